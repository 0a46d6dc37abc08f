"""One agent process for the harness: publishes EVENT_TYPE events with a unique uid through a bus module and
appends each uid whose publish returned True to an ack log (one write() per uid: a SIGKILL cannot tear it).
With --views-out it instead writes its get_events(EVENT_TYPE) view as JSON and exits.

Modes: dropin (bmadguard.message_bus over the store at --target), oldbus (the old bus stand-in over the file at
--target), oldbus-keep (the stand-in with its lock file kept)."""

import argparse
import json
import os
import time

EVENT_TYPE = "agent_tick"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=["dropin", "oldbus", "oldbus-keep"])
    ap.add_argument("--target", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--ack-log")
    ap.add_argument("--until", type=float, default=0.0)
    ap.add_argument("--count", type=int)
    ap.add_argument("--views-out")
    a = ap.parse_args()
    if a.mode == "dropin":
        from bmadguard import message_bus as bus
        bus.configure(store=a.target, source=a.name)
    else:
        import oldbus_standin as bus  # type: ignore[no-redef]
        bus.configure(a.target, keep_lock_file=(a.mode == "oldbus-keep"))
    if a.views_out:
        with open(a.views_out, "w") as f:
            json.dump(bus.get_events(EVENT_TYPE), f)
        return 0
    fd = os.open(a.ack_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    i = 0
    first_done = 0.0
    while time.time() < a.until and (a.count is None or i < a.count):
        uid = f"{a.name}:{os.getpid()}:{i}"
        if bus.publish(EVENT_TYPE, {"uid": uid, "agent": a.name}):
            os.write(fd, (uid + "\n").encode())
        if i == 0:
            first_done = time.time()  # after the first publish: process and CLI start are behind us
        i += 1
    with open(a.ack_log + ".timing", "a") as t:  # for the benchmark: the publishing window after the first
        t.write(f"{first_done!r} {time.time()!r} {max(0, i - 1)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
