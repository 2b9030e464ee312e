"""`invsync demo`: a short flash sale on the example policy, run the way a new user runs it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from invsync.cli import main

PLATFORMS = ("shopify", "amazon", "walmart", "ebay", "tiktok", "shopee", "lazada")

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
# The CLI with Ctrl-C turned back on: a test runner started in the background
# passes SIGINT on as ignored.
CLI_WITH_CTRL_C = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from invsync.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.nats
def test_demo_shows_every_channel_and_no_oversell(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("invsync.engine")
    code = main(["demo", "--policy", str(EXAMPLE_POLICY), "--duration", "3", "--rate", "80"])
    out = capsys.readouterr().out
    assert code == 0, out
    shown_header = next(line for line in out.splitlines() if line.startswith("A shown"))
    assert shown_header.split()[2:] == [
        "shopify",
        "b2b-portal",
        "amazon",
        "walmart",
        "ebay",
        "tiktok",
        "shopee",
        "lazada",
    ]
    rows = {line.rsplit(None, 1)[0]: line.split()[-1] for line in out.splitlines() if line}
    assert rows["oversold units by reservation"] == "0"
    assert int(rows["reservations granted"].replace(",", "")) > 0
    latency_table = out.split("sync latency (ms)", 1)[1]
    latency_all = next(line for line in latency_table.splitlines() if line.startswith("all "))
    samples, p50 = latency_all.split()[1:3]
    assert int(samples.replace(",", "")) > 0 and float(p50) > 0
    assert "checker: PASS" in out
    # The marketplace channels sold on the sandbox, and each ended at what invsync decided.
    market = out.split("Marketplaces (sandbox)", 1)[1].splitlines()
    rows_by_channel = {line.split()[0]: line.split() for line in market[3:10]}
    assert sorted(rows_by_channel) == sorted(PLATFORMS)
    for channel, cells in rows_by_channel.items():
        # channel platform sold refused pushes p50 p99 requests throttled equal less
        assert cells[1] == channel
        assert int(cells[4]) > 0, f"the gateway pushed nothing to {channel}"
        assert cells[5] != "-" and cells[6] != "-", f"no push latency for {channel}"
        assert cells[8] == "0", f"{channel} throttled the gateway"
        equal, listings = cells[9].split("/")
        assert int(equal) + int(cells[10]) == int(listings), market
    assert sum(int(cells[2]) for cells in rows_by_channel.values()) > 0, "nothing sold there"
    # The rehearsal says which of the platforms' documented delays it shortened.
    shortened = next(line for line in out.splitlines() if "shortened for the rehearsal" in line)
    assert "order delay" in shortened and "feed processing" in shortened


@pytest.mark.nats
def test_ctrl_c_stops_the_demo_and_everything_it_started() -> None:
    pytest.importorskip("invsync.engine")
    psutil = pytest.importorskip("psutil")
    demo = subprocess.Popen(
        [sys.executable, "-c", CLI_WITH_CTRL_C, "demo", "--policy", str(EXAMPLE_POLICY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        assert demo.stdout.readline().startswith("invsync demo:")
        deadline = time.monotonic() + 10
        started: list[psutil.Process] = []
        while not started and time.monotonic() < deadline:
            started = psutil.Process(demo.pid).children(recursive=True)
            time.sleep(0.1)
        assert [child.name() for child in started] == ["nats-server"]
        time.sleep(2)  # into the sale
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=20) == 130
        assert "interrupted" in demo.stdout.read()
        assert not any(child.is_running() for child in started)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
