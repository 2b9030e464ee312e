"""`invsync serve --partitions N --partition K|auto`: which partition an instance runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from invsync.errors import InvsyncError
from invsync.service.config import ServiceConfig, resolve_partition


def test_a_number_names_the_partition() -> None:
    assert resolve_partition("1", 2, "whatever") == 1
    assert resolve_partition("0", 1, "whatever") == 0


def test_auto_takes_the_statefulset_pod_ordinal() -> None:
    assert resolve_partition("auto", 3, "invsync-2") == 2
    assert resolve_partition("auto", 12, "invsync-p-11") == 11


@pytest.mark.parametrize(
    ("value", "partitions", "hostname", "says"),
    [
        ("2", 2, "h", "partition 2 does not exist with --partitions 2 (0 to 1)"),
        ("auto", 2, "invsync-5", "partition 5 does not exist with --partitions 2"),
        ("auto", 2, "laptop", "does not end in a pod ordinal"),
        ("one", 2, "h", "expected a number or 'auto'"),
        ("0", 0, "h", "there must be at least 1"),
    ],
)
def test_a_partition_that_cannot_run_is_refused_with_the_fix(
    value: str, partitions: int, hostname: str, says: str
) -> None:
    with pytest.raises(InvsyncError) as refused:
        resolve_partition(value, partitions, hostname)
    assert says in str(refused.value)


def test_with_one_partition_every_sku_is_applied_whatever_partition_names() -> None:
    # A standby setup may name partition 1 for its lease while running one partition.
    lone = ServiceConfig(policy_path=Path("policy.toml"), partition=1)
    assert lone.sku_share == (0, 1)
    shared = ServiceConfig(policy_path=Path("policy.toml"), partition=1, partitions=2)
    assert shared.sku_share == (1, 2)
