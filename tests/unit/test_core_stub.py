"""The hand-written `_core.pyi` matches the built extension (names, signatures)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_core_stub_matches_the_built_extension() -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "invsync._core"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
