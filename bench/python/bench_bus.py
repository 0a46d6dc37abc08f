"""Durable publish rate of the drop-in bus (bmadguard.message_bus) against a faithful stand-in of the agents' old
file bus, measured in the same run:

  1. one writer, N events (default 2,000), each publish waiting for its answer: drop-in (durable: the CLI
     acknowledges after its fsync) vs the old bus (whole-file rewrite, no fsync); plus Bus.publish_many (the
     same events in one batch, grouped under shared fsyncs by the CLI);
  2. W writer processes (default 4) publishing N/W events each at once: rate and loss (acknowledged events not in
     the bus afterwards) for both.

    python3 bench/python/bench_bus.py [--events 2000] [--writers 4]

The CLI: $BMADGUARD_CLI, else dotnet src/BmadGuard.Cli/bin/Release/net10.0/bmadguard.dll (build it first).
Figures are ratios measured in one run on one machine, not absolute promises."""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "tests" / "python"))
import harness  # noqa: E402
import oldbus_standin  # noqa: E402
from bmadguard import Bus  # noqa: E402
from bmadguard import message_bus  # noqa: E402


def single_writer(events: int, work: Path) -> dict:
    store = str(work / "store1")
    message_bus.configure(store=store, cli=harness.cli_command(), source="bench")
    message_bus.publish("bench_warmup", {})  # starts the publisher child (process start is not per event)
    t = time.perf_counter()
    ok = sum(message_bus.publish("bench_tick", {"i": i, "payload": "x" * 64}) for i in range(events))
    dropin = ok / (time.perf_counter() - t)

    with Bus(str(work / "store2"), harness.cli_command(), auto_init=True) as bus:
        bus.publish("bench.warmup", {})
        t = time.perf_counter()
        bus.publish_many([("bench_tick", {"i": i, "payload": "x" * 64}) for i in range(events)])
        batched = events / (time.perf_counter() - t)

    old_file = work / "old1" / "shared_context.json"
    old_file.parent.mkdir()
    oldbus_standin.configure(str(old_file))
    t = time.perf_counter()
    ok_old = sum(oldbus_standin.publish("bench_tick", {"i": i, "payload": "x" * 64}) for i in range(events))
    old = ok_old / (time.perf_counter() - t)
    return {"dropin": dropin, "batched": batched, "old": old, "ok": ok, "ok_old": ok_old}


def many_writers(events: int, writers: int, work: Path) -> dict:
    per = max(1, events // writers)
    store = str(work / "store4")
    with Bus(store, harness.cli_command()) as bus:
        bus.init()
    results = {}
    for mode, target in (("dropin", store), ("oldbus", str(work / "old4" / "shared_context.json"))):
        r = harness.run_agents(mode, target, work / f"run-{mode}", writers, seconds=3600, kill=False, count=per)
        results[mode] = r
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--writers", type=int, default=4)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bmadguard-bench-py-"))
    try:
        print(f"bench_bus: {a.events} events, CLI: {harness.cli_command()}, load {os.getloadavg()[0]:.1f}", flush=True)
        s = single_writer(a.events, work)
        print(f"single writer, {a.events} events, one publish at a time:")
        print(f"  drop-in (durable, ack per event)     {s['dropin']:9.1f} events/s  ({s['ok']} acknowledged)")
        print(f"  old bus stand-in (no fsync)          {s['old']:9.1f} events/s  ({s['ok_old']} returned True)")
        print(f"  Bus.publish_many (durable, 1 batch)  {s['batched']:9.1f} events/s")
        print(f"  ratio drop-in / old bus: {s['dropin'] / s['old']:.1f}x; publish_many / old bus: {s['batched'] / s['old']:.1f}x",
              flush=True)
        m = many_writers(a.events, a.writers, work)
        print(f"{a.writers} writer processes, {a.events // a.writers} events each (rate: after each writer's first publish):")
        for mode, r in m.items():
            print(f"  {mode:7s} {r.steady_rate:9.1f} events/s  acknowledged {len(r.acked)}, lost {len(r.lost)}, "
                  f"duplicated {len(r.duplicated)} ({r.seconds:.1f} s wall clock incl. process start)")
        d, o = m["dropin"], m["oldbus"]
        rd = d.steady_rate
        ro = max(1e-9, o.steady_rate)
        print(f"  ratio drop-in / old bus: {rd / ro:.1f}x; loss drop-in {len(d.lost)}, old bus {len(o.lost)} of "
              f"{len(o.acked)} ({100.0 * len(o.lost) / max(1, len(o.acked)):.0f} %)")
        return 0
    finally:
        shutil.rmtree(work, True)


if __name__ == "__main__":
    raise SystemExit(main())
