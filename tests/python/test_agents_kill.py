"""Four agent processes publishing for a few seconds while random ones are SIGKILLed (with their bmadguard child)
and restarted: through the drop-in, every event whose publish returned True is in the store exactly once and
every process sees the same events; through a faithful stand-in of the old bus, acknowledged events are lost while
it deletes its lock file, and none when the lock file is kept. Longer runs: BMADGUARD_PY_SOAK=<seconds>."""

import random
import shutil
import tempfile
import unittest
from pathlib import Path

import harness
from bmadguard import Bus

AGENTS = 4


class AgentsKillTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bmadguard-kill-"))
        self.addCleanup(shutil.rmtree, self.dir, True)

    def report(self, r: harness.RunResult, seed: int) -> str:
        return (f"{r.mode}: seed {seed}, {r.seconds:.1f} s, {r.kills} kills, {len(r.acked)} acknowledged, "
                f"{sum(r.stored.values())} stored, {len(r.lost)} lost, {len(r.duplicated)} duplicated")

    def test_dropin_keeps_every_acknowledged_event_exactly_once_through_kill9(self) -> None:
        store = str(self.dir / "store")
        with Bus(store, harness.cli_command()) as bus:
            bus.init()
        seed = random.randrange(1 << 30)
        r = harness.run_agents("dropin", store, self.dir / "run", AGENTS, max(8.0, harness.soak_seconds()), seed=seed)
        print("\n  " + self.report(r, seed))
        self.assertGreater(r.kills, 0)
        self.assertGreater(len(r.acked), 0, self.report(r, seed))
        self.assertEqual(sorted(r.lost), [], self.report(r, seed))
        self.assertEqual(sorted(r.duplicated), [], self.report(r, seed))
        views = harness.read_views("dropin", store, self.dir / "run", AGENTS)
        for view in views[1:]:
            self.assertEqual(view, views[0])
        self.assertEqual(len(views[0]), sum(r.stored.values()))

    def test_old_bus_standin_loses_acknowledged_events_when_it_deletes_its_lock_file(self) -> None:
        lost = 0
        for attempt in range(4):  # bounded: the race is near certain in a few seconds, but not in every run
            seed = random.randrange(1 << 30)
            work = self.dir / f"old{attempt}"
            r = harness.run_agents("oldbus", str(work / "shared_context.json"), work, AGENTS,
                                   max(3.0, harness.soak_seconds()), seed=seed)
            print("\n  " + self.report(r, seed))
            lost = len(r.lost)
            if lost:
                break
        self.assertGreater(lost, 0, "the old bus's stand-in lost nothing: the harness cannot see loss")

    def test_old_bus_standin_with_its_lock_file_kept_loses_nothing(self) -> None:
        seed = random.randrange(1 << 30)
        work = self.dir / "keep"
        r = harness.run_agents("oldbus-keep", str(work / "shared_context.json"), work, AGENTS,
                               max(3.0, harness.soak_seconds()), seed=seed)
        print("\n  " + self.report(r, seed))
        self.assertGreater(len(r.acked), 0)
        self.assertEqual(sorted(r.lost), [], self.report(r, seed))
        self.assertEqual(sorted(r.duplicated), [], self.report(r, seed))
        views = harness.read_views("oldbus-keep", str(work / "shared_context.json"), work, 2)
        self.assertEqual(views[0], views[1])


if __name__ == "__main__":
    unittest.main()
