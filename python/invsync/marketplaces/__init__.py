"""What each marketplace documents about its quantity API: paths, payload names,
limits and error codes, with their sources. One module per platform, read by both
sides of the wire: the gateway's profile (`invsync.gateway.platforms`) and the
sandbox's emulation (`invsync.sandbox.platforms`), so the two never disagree about
a documented fact.
"""
