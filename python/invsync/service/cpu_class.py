"""A follower's CPU time yields to the leader's on a shared machine.

A standby applies the log only to be ready to take over: its work is throughput,
while the leader's (and the NATS server's) is latency. Linux's SCHED_BATCH policy
says exactly that to the scheduler: a batch thread gets its fair share of the CPU
but does not preempt a running thread when it wakes, so a burst the standby picks
up does not delay the leader's next quantity. Unlike a nice value, which an
unprivileged process can raise but never lower again, the policy can be switched
back to SCHED_OTHER without privileges, so a promoted standby leads at full
priority. Where the policy is missing (not Linux) or refused, nothing changes.
"""

from __future__ import annotations

import os
from pathlib import Path

_TASKS = Path("/proc/self/task")


def _threads() -> list[int]:
    """Every thread of this process (the policy is per thread)."""
    try:
        return [int(tid.name) for tid in _TASKS.iterdir()]
    except OSError:
        return [0]  # the calling thread


def run_as(*, follower: bool) -> None:
    """Put every thread of this process in the follower's or the leader's CPU class."""
    batch = getattr(os, "SCHED_BATCH", None)
    other = getattr(os, "SCHED_OTHER", None)
    if batch is None or other is None:
        return
    policy = batch if follower else other
    for tid in _threads():
        try:
            os.sched_setscheduler(tid, policy, os.sched_param(0))
        except OSError:
            continue  # a thread that ended meanwhile, or a policy this host refuses


def class_of(tid: int = 0) -> str:
    """`follower` or `leader`: the CPU class thread `tid` (0: this one) runs in."""
    batch = getattr(os, "SCHED_BATCH", None)
    return "follower" if batch is not None and os.sched_getscheduler(tid) == batch else "leader"
