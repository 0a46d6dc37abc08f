"""bmadguard.Bus against the real CLI: durable acks, error codes, publisher restart, reads, durable consumers."""

import os
import shutil
import tempfile
import unittest
from pathlib import Path

import harness  # noqa: F401  (puts the package on sys.path when it is not installed)
from bmadguard import BmadGuardError, Bus, PublishBatchError
from bmadguard._cli import parse_stderr_line


class BusTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bmadguard-py-"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.store = str(self.dir / "store")
        self.cli = harness.cli_command()

    def bus(self, **kw) -> Bus:  # type: ignore[no-untyped-def]
        b = Bus(self.store, self.cli, **kw)
        self.addCleanup(b.close)
        return b


class PublishTests(BusTestCase):
    def test_publish_returns_the_acknowledged_event_and_another_process_reads_it(self) -> None:
        bus = self.bus(auto_init=True)
        ev = bus.publish("story.created", {"id": 7}, source="architect", correlation_id="c-1")
        self.assertEqual((ev.seq, ev.type, ev.source, ev.correlation_id, ev.data),
                         (1, "story.created", "architect", "c-1", {"id": 7}))
        self.assertTrue(ev.id)
        again = Bus(self.store, self.cli).get_events()
        self.assertEqual([e.to_dict() for e in again], [ev.to_dict()])

    def test_bad_type_raises_with_the_cli_code_and_the_bus_keeps_working(self) -> None:
        bus = self.bus(auto_init=True)
        bus.publish("ok.first", {})
        child = bus._publisher.proc.pid  # type: ignore[union-attr]
        with self.assertRaises(BmadGuardError) as cm:
            bus.publish("not a type", {"x": 1})
        self.assertEqual(cm.exception.code, "InvalidEventType")
        self.assertEqual(cm.exception.exit_code, 2)
        with self.assertRaises(BmadGuardError) as cm:
            bus.publish("ok.type", [1, 2])  # type: ignore[arg-type]
        self.assertEqual(cm.exception.code, "DataNotObject")
        ev = bus.publish("ok.second", {"n": 2})
        self.assertEqual(ev.seq, 2)  # nothing was written for the bad lines
        self.assertEqual(bus._publisher.proc.pid, child)  # type: ignore[union-attr]  # same child all along
        self.assertEqual([e.type for e in bus.get_events()], ["ok.first", "ok.second"])

    def test_data_python_cannot_write_as_json_raises_invalid_data(self) -> None:
        bus = self.bus(auto_init=True)
        with self.assertRaises(BmadGuardError) as cm:
            bus.publish("ok.type", {"x": float("nan")})
        self.assertEqual(cm.exception.code, "InvalidData")

    def test_publish_many_writes_the_good_lines_and_reports_the_bad_one(self) -> None:
        bus = self.bus(auto_init=True)
        events = bus.publish_many([("a.one", {"i": 1}), {"type": "a.two", "data": {"i": 2}, "source": "s"}])
        self.assertEqual([(e.seq, e.type, e.source) for e in events], [(1, "a.one", "unknown"), (2, "a.two", "s")])
        with self.assertRaises(PublishBatchError) as cm:
            bus.publish_many([("a.three", {}), ("bad type", {}), ("a.four", {})])
        self.assertEqual(cm.exception.code, "InvalidEventType")
        self.assertEqual([i for i, _ in cm.exception.errors], [1])
        self.assertEqual([e.type for e in cm.exception.published], ["a.three", "a.four"])
        self.assertEqual(bus.publish("a.five", {}).seq, 5)

    def test_missing_store_is_store_not_found_exit_1_and_auto_init_creates_it(self) -> None:
        with self.assertRaises(BmadGuardError) as cm:
            self.bus().publish("a.b", {})
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("StoreNotFound", 1))
        with self.assertRaises(BmadGuardError) as cm:
            self.bus().get_events()
        self.assertEqual((cm.exception.code, cm.exception.exit_code), ("StoreNotFound", 1))
        self.assertEqual(self.bus(auto_init=True).publish("a.b", {}).seq, 1)

    def test_a_dead_publisher_is_restarted_on_the_next_publish(self) -> None:
        bus = self.bus(auto_init=True)
        bus.publish("a.b", {"n": 1})
        bus._publisher.proc.kill()  # type: ignore[union-attr]
        bus._publisher.proc.wait()  # type: ignore[union-attr]
        self.assertEqual(bus.publish("a.b", {"n": 2}).seq, 2)
        self.assertEqual([e.data["n"] for e in bus.get_events()], [1, 2])

    def test_unknown_cli_is_cli_not_found(self) -> None:
        with self.assertRaises(BmadGuardError) as cm:
            Bus(self.store, str(self.dir / "no-such-bmadguard")).publish("a.b", {})
        self.assertEqual(cm.exception.code, "CliNotFound")

    def test_store_and_cli_come_from_the_environment(self) -> None:
        saved = {k: os.environ.get(k) for k in ("BMADGUARD_STORE", "BMADGUARD_CLI")}
        os.environ["BMADGUARD_STORE"], os.environ["BMADGUARD_CLI"] = self.store, self.cli

        def restore() -> None:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.addCleanup(restore)
        with Bus(auto_init=True) as bus:
            bus.publish("env.store", {})
        self.assertEqual(Bus(self.store, self.cli).stats()["totalEvents"], 1)

    def test_both_shapes_of_a_bad_line_report_are_understood(self) -> None:
        self.assertEqual(parse_stderr_line("bmadguard: InvalidEventType: line 3: bad")[:3], ("line", "InvalidEventType", 3))
        self.assertEqual(parse_stderr_line("bmadguard: line 4: DataNotObject: bad")[:3], ("line", "DataNotObject", 4))
        self.assertEqual(parse_stderr_line("bmadguard: notice: TornTailCut: cut")[:2], ("notice", "TornTailCut"))
        self.assertEqual(parse_stderr_line("bmadguard: StoreLocked: busy")[:2], ("error", "StoreLocked"))


class ReadTests(BusTestCase):
    def test_filters_type_after_last_and_inclusive_since(self) -> None:
        bus = self.bus(auto_init=True)
        evs = bus.publish_many([("story.created", {"i": i}) if i % 2 else ("task.done", {"i": i}) for i in range(6)])
        self.assertEqual([e.seq for e in bus.get_events(type="story.*")], [2, 4, 6])
        self.assertEqual([e.seq for e in bus.get_events(after=4)], [5, 6])
        self.assertEqual([e.seq for e in bus.get_events(last=2)], [5, 6])
        since = bus.get_events(since=evs[3].timestamp)  # the CLI's --since is inclusive
        self.assertIn(4, [e.seq for e in since])
        self.assertTrue(all(e.timestamp >= evs[3].timestamp for e in since))
        self.assertEqual(bus.stats()["totalEvents"], 6)

    def test_consume_keeps_its_position_across_a_bus_restart(self) -> None:
        with Bus(self.store, self.cli, auto_init=True) as bus:
            bus.publish_many([("a.b", {"i": i}) for i in range(3)])
            self.assertEqual([e.seq for e in bus.consume("reviewer")], [1, 2, 3])
        with Bus(self.store, self.cli) as bus:
            self.assertEqual(bus.consume("reviewer"), [])
            bus.publish_many([("a.b", {"i": i}) for i in range(3, 5)])
        with Bus(self.store, self.cli) as bus:
            self.assertEqual([e.seq for e in bus.consume("reviewer")], [4, 5])
            self.assertEqual([e.seq for e in bus.consume("other")], [1, 2, 3, 4, 5])

    def test_follow_streams_new_events_and_a_consumer_resumes_after_a_restart(self) -> None:
        with Bus(self.store, self.cli, auto_init=True) as bus:
            bus.publish_many([("a.b", {"i": i}) for i in range(3)])
            stream = bus.follow(consumer="watcher")
            self.assertEqual([next(stream).seq for _ in range(3)], [1, 2, 3])
            bus.publish("a.b", {"i": 3})
            self.assertEqual(next(stream).seq, 4)  # published while following
            stream.close()  # type: ignore[attr-defined]
        with Bus(self.store, self.cli) as bus:
            bus.publish("a.b", {"i": 4})
            stream = bus.follow(consumer="watcher")
            self.assertEqual(next(stream).seq, 5)
            stream.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    unittest.main()
