"""One profile per marketplace, each behind the `Profile` protocol of `base`.

A platform's profile lives in `invsync.gateway.platforms.<platform>` as `PROFILE`, a
`ProfileFactory`. It is found by that name when a channel needs it, so adding a
platform adds a module and touches nothing here, and a channels file can name a
platform whose profile is not shipped yet and get a clear refusal.
"""

from __future__ import annotations

import importlib

from invsync.gateway.platforms.base import ProfileFactory

__all__ = ["profile_factory"]


def profile_factory(platform: str) -> ProfileFactory:
    """The profile factory of `platform`; LookupError when invsync has no profile for it."""
    try:
        module = importlib.import_module(f"{__name__}.{platform}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{platform}":
            raise
        raise LookupError(f"no profile for platform {platform!r} in this version") from None
    factory: ProfileFactory = module.PROFILE
    return factory
