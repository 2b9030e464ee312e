"""One piece of the core's work, or the same script without it, for instruction counts
that the machine's load does not move:

    PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no \\
        python bench/python/instructions.py MODE run|skip

The work's instructions are `run`'s total minus `skip`'s. MODE: `apply` (`apply_all`
of the 20,000 contract events of test_core.py), `orders-static` and `orders-auto`
(four one-line orders on each of 10,000 SKUs, static or automatic buffers, in an
engine that began counting just now), `orders-auto-warm` (the same in an engine that
has counted three hours: no warm-up correction).
"""

import sys
from datetime import timedelta
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).parent))
from conftest import stocked_engine
from test_core import (
    FALLBACK_TS,
    ClockTick,
    InboundEvent,
    contract_events,
    fresh_engine,
    selling_on_every_channel,
)

mode, measured = sys.argv[1], sys.argv[2] == "run"
if mode == "apply":
    structs = [msgspec.convert(e, InboundEvent) for e in contract_events()]
    engine, events = fresh_engine(structs)(0)
    if measured:
        assert not engine.apply_all(events).refused
else:
    engine, _ = stocked_engine(10_000, 100, automatic=mode != "orders-static")
    if mode == "orders-auto-warm":
        engine.apply_all([ClockTick(event_id="t0", ts=FALLBACK_TS)])
        engine.apply_all([ClockTick(event_id="t1", ts=FALLBACK_TS + timedelta(hours=3))])
    if measured:
        selling_on_every_channel(engine, 10_000)
