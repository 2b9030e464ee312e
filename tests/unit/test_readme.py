"""The README's quick start runs as written and prints what it claims."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_quick_start_runs_and_prints_its_numbers() -> None:
    code = README.read_text().split("```python", 1)[1].split("```", 1)[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})  # noqa: S102 (running the README is the test)
    lines = out.getvalue().splitlines()
    assert lines[0] == "True 673 300"
    assert lines[1] == "A  ATS 673 = on hand 1000 − reserved 252 − safety 75"
    assert "  amazon   tier 2    300  = min(cap 300, 673 − protect[1] 0)" in lines
