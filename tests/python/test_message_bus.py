"""bmadguard.message_bus, the drop-in for the agents' old file bus: same API, same semantics where agents depend
on them (exclusive since, in-process callbacks, clear_events), history kept in the store."""

import inspect
import json
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import harness
import oldbus_standin
from bmadguard import Bus
from bmadguard import message_bus as mb

LEGACY_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$")


class MessageBusTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bmadguard-mb-"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.store = str(self.dir / "store")  # not created: the first publish creates it, as the old bus's file
        mb.configure(store=self.store, cli=harness.cli_command(), source="tester")
        self.addCleanup(mb._subscribers.clear)

    def store_events(self):  # type: ignore[no-untyped-def]
        with Bus(self.store, harness.cli_command()) as bus:
            return bus.get_events()


class ApiTests(MessageBusTestCase):
    def test_the_same_names_and_signatures_as_the_old_bus(self) -> None:
        for name in ("publish", "subscribe", "unsubscribe", "get_events", "clear_events", "get_statistics"):
            old = inspect.signature(getattr(oldbus_standin, name))
            new = inspect.signature(getattr(mb, name))
            self.assertEqual([(p.name, p.default) for p in new.parameters.values()],
                             [(p.name, p.default) for p in old.parameters.values()], name)

    def test_the_old_module_path_shim_works_with_one_path_entry(self) -> None:
        shim = harness.ROOT / "src" / "python" / "shim"
        code = ("from bmad.agents.core.communication.message_bus import publish, get_events, configure\n"
                f"configure(store={self.store!r})\n"
                "print(publish('shim_event', {'k': 1}), [e['event'] for e in get_events()])\n")
        env = harness.child_env()
        env["PYTHONPATH"] = f"{shim}:{env['PYTHONPATH']}"
        out = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, check=True).stdout
        self.assertEqual(out.decode().strip(), "True ['shim_event']")


class PublishAndReadTests(MessageBusTestCase):
    def test_publish_returns_true_and_get_events_returns_legacy_shaped_dicts(self) -> None:
        self.assertEqual(mb.get_events(), [])  # no store yet: empty, as the old bus without its file
        self.assertIs(mb.publish("workflow_completed", {"workflow_id": "w1"}), True)
        events = mb.get_events()
        self.assertEqual(len(events), 1)
        self.assertEqual(set(events[0]), {"timestamp", "event", "data"})
        self.assertEqual((events[0]["event"], events[0]["data"]), ("workflow_completed", {"workflow_id": "w1"}))
        self.assertRegex(events[0]["timestamp"], LEGACY_TIME)
        self.assertEqual([e.source for e in self.store_events()], ["tester"])

    def test_since_is_exclusive_as_in_the_old_bus(self) -> None:
        for i in range(3):
            self.assertTrue(mb.publish("tick", {"i": i}))
        events = mb.get_events()
        self.assertEqual([e["data"]["i"] for e in mb.get_events(since=events[1]["timestamp"])], [2])
        self.assertEqual([e["data"]["i"] for e in mb.get_events(since=events[0]["timestamp"])], [1, 2])
        self.assertEqual(mb.get_events(since=events[2]["timestamp"]), [])
        # the store's own --since includes the event at exactly that time: the drop-in does not pass that on
        with Bus(self.store, harness.cli_command()) as bus:
            self.assertIn(2, [e.data["i"] for e in bus.get_events(since=events[2]["timestamp"] + "Z")])

    def test_event_type_filter_is_exact(self) -> None:
        mb.publish("review_requested", {"n": 1})
        mb.publish("review_requested_again", {"n": 2})
        self.assertEqual([e["data"]["n"] for e in mb.get_events("review_requested")], [1])
        self.assertEqual(len(mb.get_events(event_type=None)), 2)

    def test_an_invalid_event_name_returns_false_and_writes_nothing(self) -> None:
        self.assertTrue(mb.publish("first", {}))
        self.assertIs(mb.publish("not valid!", {"x": 1}), False)
        self.assertEqual([e.type for e in self.store_events()], ["first"])

    def test_data_that_is_not_an_object_is_kept_under_value(self) -> None:
        self.assertTrue(mb.publish("listy", [1, 2, 3]))
        self.assertEqual(mb.get_events("listy")[0]["data"], {"value": [1, 2, 3]})


class SubscribeTests(MessageBusTestCase):
    def test_callbacks_fire_in_process_on_publish_and_stop_after_unsubscribe(self) -> None:
        seen, other = [], []
        mb.subscribe("story_done", seen.append)
        mb.subscribe("something_else", other.append)
        mb.subscribe("story_done", lambda e: 1 / 0)  # a failing callback is logged, publish still True
        with self.assertLogs("bmadguard.message_bus", "ERROR"):
            self.assertTrue(mb.publish("story_done", {"id": 1}))
        self.assertEqual(len(seen), 1)
        self.assertEqual((seen[0]["event"], seen[0]["data"]), ("story_done", {"id": 1}))
        self.assertRegex(seen[0]["timestamp"], LEGACY_TIME)
        self.assertEqual(seen[0], mb.get_events("story_done")[0])
        self.assertEqual(other, [])
        mb.unsubscribe("story_done", seen.append)
        mb.unsubscribe("story_done", seen.append)  # unknown now: ignored, as before
        mb.unsubscribe("never", seen.append)
        with self.assertLogs("bmadguard.message_bus", "ERROR"):
            mb.publish("story_done", {"id": 2})
        self.assertEqual(len(seen), 1)

    def test_no_callback_for_a_publish_that_failed(self) -> None:
        seen = []
        mb.subscribe("bad name!", seen.append)
        self.assertFalse(mb.publish("bad name!", {}))
        self.assertEqual(seen, [])


class ClearTests(MessageBusTestCase):
    def test_clear_hides_earlier_events_from_every_process_and_deletes_nothing(self) -> None:
        mb.publish("before", {"n": 1})
        mb.publish("before", {"n": 2})
        self.assertIs(mb.clear_events(), True)
        self.assertEqual(mb.get_events(), [])
        mb.publish("after", {"n": 3})
        self.assertEqual([e["event"] for e in mb.get_events()], ["after"])
        # another process (a new interpreter) sees the same
        code = (f"from bmadguard import message_bus as m; import json; m.configure(store={self.store!r}); "
                "print(json.dumps([e['event'] for e in m.get_events()]))")
        out = subprocess.run([sys.executable, "-c", code], env=harness.child_env(), stdout=subprocess.PIPE,
                             check=True).stdout
        self.assertEqual(json.loads(out), ["after"])
        # the history is all still in the store, the marker included
        self.assertEqual([e.type for e in self.store_events()], ["before", "before", mb.CLEARED_EVENT_TYPE, "after"])
        stats = mb.get_statistics()
        self.assertEqual((stats["total_events"], stats["event_types"]), (1, {"after": 1}))
        self.assertGreater(stats["file_size"], 0)
        self.assertIs(stats["backup_exists"], False)

    def test_since_before_the_marker_still_starts_after_it(self) -> None:
        mb.publish("before", {})
        early = mb.get_events()[0]["timestamp"]
        mb.clear_events()
        mb.publish("after", {})
        self.assertEqual([e["event"] for e in mb.get_events(since=early)], ["after"])


if __name__ == "__main__":
    unittest.main()
