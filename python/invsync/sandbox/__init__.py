"""`invsync sandbox`: the marketplaces on loopback, strict as the platforms are.

Each platform in `platforms/` serves its documented quantity endpoints (paths,
payload shapes, auth, batch limits, rate budgets with the platform's own throttle
response, and quirks such as Shopify's compare-and-swap or eBay's revision cap) on
one aiohttp application. The sandbox also sells: a sale decrements a listing and,
after the platform's order delay, publishes the `order.placed` the seller's OMS
would send.
"""
