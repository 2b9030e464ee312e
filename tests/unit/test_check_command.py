"""`invsync check` passes a good policy and points at the line and field of a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from invsync.cli import main

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


def test_check_accepts_the_example_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--policy", str(EXAMPLE_POLICY)]) == 0
    assert "ok: 8 channels on tiers 1, 2, 3" in capsys.readouterr().out


def test_check_names_file_line_and_field_of_a_bad_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tiers]]\ntier = 1\n\n[[channels]]\nid = "amazon"\ntier = 1\nshare = 1.5\n')
    assert main(["check", "--policy", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f'{bad}:7: channels["amazon"].share' in err


def test_check_refuses_a_seventeenth_tier_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The core keeps 16 tiers: check must refuse what a running service could not load."""
    tiers = "".join(f"[[tiers]]\ntier = {tier}\n\n" for tier in range(1, 18))
    policy = tmp_path / "tiers.toml"
    policy.write_text(tiers + '[[channels]]\nid = "amazon"\ntier = 17\n')
    assert main(["check", "--policy", str(policy)]) == 1
    line = tiers.splitlines().index("tier = 17") + 1
    assert f"{policy}:{line}: tiers[16].tier: " in capsys.readouterr().err


def test_check_refuses_an_automatic_buffer_without_lag_s_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "auto.toml"
    policy.write_text(
        '[[tiers]]\ntier = 1\n\n[[channels]]\nid = "walmart"\ntier = 1\nbuffer = "auto"\n'
    )
    assert main(["check", "--policy", str(policy)]) == 1
    err = capsys.readouterr().err
    assert f'{policy}:7: channels["walmart"].buffer: ' in err and "lag_s" in err
    policy.write_text(policy.read_text() + "lag_s = 1800\n")
    assert main(["check", "--policy", str(policy)]) == 0
