"""What the per-call lanes share: the platform answers each call with every change's
outcome, so there is no job to poll, and a call takes 1 to `batch` changes, all of one
`group_by` parent when the platform's call names one."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp

from invsync.gateway.platforms.base import Change, LaneLimits, Reply


class SynchronousLane:
    """Base of a lane whose reply carries the outcomes. `call` names the platform's
    call in the errors a caller of the lane (the scheduler) can cause."""

    name: str
    call: str
    asynchronous = False
    quantities = True
    prices = False

    def __init__(self, limits: LaneLimits) -> None:
        self.limits = limits

    def one_call(self, changes: Sequence[Change]) -> None:
        """Raise ValueError unless `changes` fit one call (the scheduler's batching
        went wrong)."""
        batch, group_by = self.limits.batch, self.limits.group_by
        groups = {change.listing.ids[group_by] for change in changes} if group_by else set()
        if not 1 <= len(changes) <= batch or len(groups) > 1:
            of_one = f" of one {group_by}" if group_by else ""
            raise ValueError(
                f"{self.call} takes 1 to {batch} listings{of_one}, not {len(changes)}"
                + (f" of {len(groups)}" if group_by else "")
            )

    async def poll(self, http: aiohttp.ClientSession, job: str) -> Reply | None:
        raise NotImplementedError(f"{self.call} answers synchronously")
