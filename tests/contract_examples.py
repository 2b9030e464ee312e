"""The contract's second worked example, shared by the engine and the service tests."""

SECOND_EXAMPLE_POLICY = """
[[tiers]]
tier = 1
protect = 0

[[tiers]]
tier = 2
protect = 0

[[locations]]
id = "wh-3"
kind = "warehouse"

[[locations]]
id = "dropship-vendor"
kind = "dropship"

[[locations]]
id = "third-party"
kind = "3pl"

[[locations]]
id = "retail-01"
kind = "store"
online = false

[[channels]]
id = "amazon"
tier = 1

[[channels]]
id = "ebay"
tier = 2

[[channels]]
id = "shopify"
tier = 2
"""

SECOND_EXAMPLE_CHANNELS = ("amazon", "ebay", "shopify")
