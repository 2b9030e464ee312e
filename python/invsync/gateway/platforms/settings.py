"""Reading a channel's settings the way every profile does: required credentials and
options, the `batch` override, option values in seconds. Each check raises ValueError
naming the channel, so a person fixes the channels file, not the code."""

from __future__ import annotations

from collections.abc import Iterable

from invsync.gateway.platforms.base import LaneLimits, ProfileSettings


def base_url(settings: ProfileSettings, default: str) -> str:
    """The channel's `base_url` (or the platform's own), without a trailing slash."""
    return (settings.base_url or default).rstrip("/")


def require_credentials(settings: ProfileSettings, platform: str, names: Iterable[str]) -> None:
    missing = [name for name in names if name not in settings.credentials]
    if missing:
        raise ValueError(f"channel {settings.channel}: {platform} needs credentials {missing}")


def require_option(settings: ProfileSettings, platform: str, name: str) -> str:
    value = settings.options.get(name, "")
    if not value:
        raise ValueError(f"channel {settings.channel}: {platform} needs option {name}")
    return value


def refuse_daily_revisions(settings: ProfileSettings, platform: str) -> None:
    """Only a platform that caps revisions per listing per day takes `daily_revisions`."""
    if "daily_revisions" in settings.overrides:
        raise ValueError(f"channel {settings.channel}: {platform} has no daily revision cap")


def require_single_item_batch(settings: ProfileSettings, call: str) -> None:
    """A lane whose `call` takes one listing per request takes no other `batch`."""
    if settings.overrides.get("batch", 1) != 1:
        raise ValueError(f"channel {settings.channel}: {call} takes batch = 1")


def batch_override(
    settings: ProfileSettings, platform: str, default: int, maximum: int, per_call: str = ""
) -> int:
    """The `batch` override (a whole number from 1 to `maximum`), else `default`;
    `per_call` names what a call holds, e.g. " SKUs per product"."""
    batch = settings.overrides.get("batch", default)
    if not float(batch).is_integer() or not 1 <= batch <= maximum:
        raise ValueError(
            f"channel {settings.channel}: {platform} takes batch 1 to {maximum}{per_call}, "
            f"not {batch:g}"
        )
    return int(batch)


def overridden_limits(
    settings: ProfileSettings, rate: float, burst: float, batch: int, group_by: str | None = None
) -> LaneLimits:
    """The limits of the profile's first lane: the channel's `rate` and `burst`
    overrides, else the documented `rate` and `burst`."""
    return LaneLimits(
        rate=settings.overrides.get("rate", rate),
        burst=settings.overrides.get("burst", burst),
        batch=batch,
        group_by=group_by,
    )


def seconds_option(settings: ProfileSettings, name: str, default: float) -> float:
    value = settings.options.get(name, str(default))
    try:
        return float(value)
    except ValueError:
        raise ValueError(
            f"channel {settings.channel}: {name} must be seconds, not {value!r}"
        ) from None


def currency(settings: ProfileSettings, default: str) -> str:
    """The currency the channel sells in: option `currency` (ISO 4217, e.g. "SGD" for
    a Singapore shop), else the platform's `default` for its default marketplace."""
    value = settings.options.get("currency", default)
    if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise ValueError(
            f"channel {settings.channel}: currency must be an ISO 4217 code like USD, not {value!r}"
        )
    return value
