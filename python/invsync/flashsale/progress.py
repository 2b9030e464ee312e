"""A live one-line progress bar for a terminal; silent when output is not a TTY,
so logs and CI output stay clean. `invsync loadtest` and `invsync publish` both
draw theirs with it.
"""

from __future__ import annotations

from typing import TextIO

BAR_WIDTH = 24


def bar(share: float) -> str:
    """`[######------]` for a share of the work done, clamped to 0..1."""
    filled = round(min(1.0, max(0.0, share)) * BAR_WIDTH)
    return "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]"


def render_sale(
    elapsed_s: float, duration_s: float, sent: int, rate: float, p99_ms: float | None
) -> str:
    """The load test's bar: how far along, events sent, rate achieved, sync p99 so far."""
    share = elapsed_s / duration_s if duration_s > 0 else 1.0
    p99 = "-" if p99_ms is None else f"{p99_ms:.1f} ms"
    return (
        f"{bar(share)} {elapsed_s:5.1f}/{duration_s:.0f}s  sent {sent:>8,}  "
        f"{rate:>8,.0f}/s  sync p99 {p99}"
    )


class ProgressLine:
    """Rewrites one terminal line in place; does nothing unless `stream` is a TTY."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._width = 0

    def show(self, text: str) -> None:
        if not self._live:
            return
        padding = " " * max(0, self._width - len(text))
        self._width = len(text)
        self._stream.write(f"\r{text}{padding}")
        self._stream.flush()

    def close(self) -> None:
        """End the line so the summary starts on a fresh one."""
        if self._live and self._width:
            self._stream.write("\n")
            self._stream.flush()
        self._width = 0
