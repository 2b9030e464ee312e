"""The smallest policy the engine runs on (one tier, one warehouse, one channel),
shared by the unit tests that need nothing more."""

ONE_WAREHOUSE_POLICY = """
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
"""
TS = "2026-11-23T10:00:00Z"
