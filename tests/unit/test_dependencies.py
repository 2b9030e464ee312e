"""The dependency policy: every dependency capped where a new release may break us,
and the README's table saying exactly what pyproject.toml allows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Stable by their version numbers, but we reach into their internals.
CAPPED_AT_NEXT_MINOR = {"nats-py": "the service's fast lane replaces the client's parser"}

_REQUIREMENT = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)(\[[^\]]*\])?(?P<specs>.*)")
_SPEC = re.compile(r"(?P<op><=|>=|==|~=|!=|<|>)(?P<version>[0-9][0-9.]*)")


def parse(requirement: str) -> tuple[str, dict[str, tuple[int, ...]]]:
    """`name[extra]>=1.2,<2` → ("name", {">=": (1, 2), "<": (2,)})."""
    match = _REQUIREMENT.fullmatch(requirement.replace(" ", ""))
    assert match is not None, requirement
    specs: dict[str, tuple[int, ...]] = {}
    for spec in filter(None, match["specs"].split(",")):
        parsed = _SPEC.fullmatch(spec)
        assert parsed is not None, f"{requirement}: cannot read {spec!r}"
        specs[parsed["op"]] = tuple(int(part) for part in parsed["version"].split("."))
    return match["name"].lower(), specs


def all_requirements() -> list[str]:
    project = PYPROJECT["project"]
    extras = [req for group in project["optional-dependencies"].values() for req in group]
    return [*PYPROJECT["build-system"]["requires"], *project["dependencies"], *extras]


@pytest.mark.parametrize("requirement", all_requirements())
def test_every_dependency_is_capped_where_a_release_may_break_us(requirement: str) -> None:
    name, specs = parse(requirement)
    assert ">=" in specs and "<" in specs, f"{requirement}: needs a floor and a ceiling"
    floor, ceiling = specs[">="], specs["<"]
    if floor[0] == 0 or name in CAPPED_AT_NEXT_MINOR:
        # 0.x: any minor release may break; so may any release that changes internals.
        assert ceiling == (floor[0], ceiling[1]), f"{requirement}: cap below the next minor"
        assert ceiling[1] > floor[1], requirement
    else:
        assert len(ceiling) == 1 and ceiling[0] > floor[0], f"{requirement}: cap at a major"


def readme_dependency_table() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Dependencies\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", section, flags=re.MULTILINE)
    return dict(rows)


def test_readme_states_the_allowed_range_of_every_runtime_dependency() -> None:
    declared = {}
    for requirement in PYPROJECT["project"]["dependencies"]:
        name, _ = parse(requirement)
        declared[name] = requirement.replace(" ", "")[len(name) :]
    assert readme_dependency_table() == declared
