"""The channel gateway (`invsync connect`): carries each channel's shown quantities to
its marketplace within the platform's budget, and acknowledges what was accepted.

Layout: `platforms/` holds one profile per marketplace (endpoint, payload, batch size,
budget, auth, error classes); the rest is shared by every platform: the channels file,
secrets and tokens, the listing map, budgets, the push scheduler and the connector
that ties one channel's NATS feed to its profile.
"""
