"""The sandbox's marketplaces from the channels file `invsync connect` reads: one
market per channel, on the channel's platform, accepting exactly the credentials the
file names, with the listings of the channel's listing CSV (showing 0 until pushed).

The gateway profile of the same platform says how a listing is keyed (`id_fields`,
`listing_key`), so the sandbox and the gateway name every listing alike. A `kv:`
listing map is not read here: such a channel starts empty and gains its listings
through `POST /sandbox/listings`.
"""

from __future__ import annotations

import logging

from invsync.gateway.config import ChannelsFile
from invsync.gateway.listings import read_listing_csv
from invsync.gateway.platforms import profile_factory
from invsync.sandbox.app import Storefront, sandbox_factory
from invsync.sandbox.market import Market
from invsync.sandbox.platforms.base import SandboxSettings

log = logging.getLogger("invsync.sandbox")


def storefronts(channels: ChannelsFile, settings: SandboxSettings) -> list[Storefront]:
    """One storefront per channel of the file. Raises what the file's parts raise
    (CredentialError, ListingError, LookupError or ValueError), each naming the
    channel, the file or the setting at fault."""
    fronts = []
    for channel in channels.channels:
        secrets = channel.secrets(channels.base)
        profile = profile_factory(channel.platform)(channel.settings(secrets))
        market = Market(channel.platform, channel.id, options=dict(channel.options))
        emulation = sandbox_factory(channel.platform)(market, secrets, settings)
        front = Storefront(emulation, profile.id_fields, profile.listing_key)
        if channel.listings_bucket is None:
            for listing in read_listing_csv(
                channel.listings_path(channels.base), profile.id_fields
            ):
                front.add(listing)
        else:
            log.info(
                "channel %s maps listings in KV bucket %s: add them with POST /sandbox/listings",
                channel.id,
                channel.listings_bucket,
            )
        fronts.append(front)
    return fronts
