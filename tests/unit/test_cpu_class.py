"""A follower's threads yield the CPU (SCHED_BATCH) and take it back when they lead."""

from __future__ import annotations

import os
import threading

import pytest

from invsync.service.cpu_class import class_of, run_as

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux policies")


def test_every_thread_follows_then_leads_again_without_privileges() -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def worker() -> None:
        started.set()
        release.wait(10)
        seen.append(class_of())

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait(10)
    try:
        run_as(follower=True)
        assert class_of() == "follower"
        release.set()
        thread.join(10)
        assert seen == ["follower"], "a thread started before the switch follows too"
    finally:
        release.set()
        run_as(follower=False)
    assert class_of() == "leader"


def test_a_promoted_process_leads_even_after_dropping_privileges() -> None:
    """The way back needs no privilege: checked in a child that gave up root's."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            if os.getuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            run_as(follower=True)
            following = class_of() == "follower"
            run_as(follower=False)
            code = 0 if following and class_of() == "leader" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
