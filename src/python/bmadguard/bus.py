"""Bus: a BmadGuard store seen from Python, through the bmadguard CLI only.

Publishing goes through one long-lived ``bmadguard publish --stdin`` child per Bus: one NDJSON line per event in,
one acknowledgement line per event out, printed by the CLI only after the fsync that covers it. A line the CLI
rejects is reported on stderr as ``bmadguard: <Code>: line <N>: <message>`` and nothing is written for it. The
store's write and crash rules stay in the CLI; this module only counts lines and matches answers to them.
"""

import datetime as _dt
import json
import logging
import os
import queue
import re
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._cli import BmadGuardError, error_from_stderr, json_lines, parse_stderr_line, resolve_cli, resolve_store, run_cli

__all__ = ["Bus", "Event", "PublishBatchError", "TimeLike"]

log = logging.getLogger("bmadguard")

TimeLike = Union[str, _dt.datetime]


@dataclass(frozen=True)
class Event:
    """One stored event, as the CLI prints it."""

    seq: int
    id: str
    timestamp: str
    type: str
    source: str
    correlation_id: Optional[str]
    data: Any
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "Event":
        return cls(seq=int(obj["seq"]), id=str(obj["id"]), timestamp=str(obj["timestamp"]), type=str(obj["type"]),
                   source=str(obj.get("source") or ""), correlation_id=obj.get("correlationId"),
                   data=obj.get("data"), raw=dict(obj))

    def to_dict(self) -> Dict[str, Any]:
        """The event as the CLI printed it ({"seq","id","timestamp","type","source","correlationId","data"})."""
        return dict(self.raw)

    @property
    def time(self) -> _dt.datetime:
        """The timestamp as an aware UTC datetime (truncated to microseconds)."""
        return parse_time(self.timestamp)


class PublishBatchError(BmadGuardError):
    """publish_many: some lines were rejected. ``published`` holds the events that were written (durable),
    ``errors`` the (index, BmadGuardError) of each rejected one; the first error's code is this one's."""

    def __init__(self, published: List[Event], errors: List[Tuple[int, BmadGuardError]]) -> None:
        first = errors[0][1]
        super().__init__(first.code, f"{len(errors)} of {len(published) + len(errors)} events rejected; "
                         f"first (index {errors[0][0]}): {first.message}", first.exit_code, first.line)
        self.published = published
        self.errors = errors


_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str) -> _dt.datetime:
    """An ISO 8601 time as an aware UTC datetime, fractions truncated to microseconds. Naive times are UTC
    (as ``bmadguard import-legacy`` reads them by default). Raises ValueError when the text is not ISO 8601."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"'{text}' is not an ISO 8601 time")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz = _dt.timezone.utc
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), micro, tz).astimezone(_dt.timezone.utc)


def _time_arg(value: TimeLike) -> str:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).isoformat()
    parse_time(value)  # a clear InvalidArgument here; the CLI reads the text itself, to its full precision
    return value


class _Publisher:
    """One ``bmadguard publish --stdin`` child and the two threads reading its stdout and stderr."""

    def __init__(self, argv: List[str]) -> None:
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         bufsize=0)
        except FileNotFoundError as ex:
            raise BmadGuardError("CliNotFound", f"Cannot start '{argv[0]}': {ex.strerror}") from ex
        self.pid = os.getpid()
        self.lines_sent = 0
        self.acks: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        self.cond = threading.Condition()
        self.line_errors: Dict[int, BmadGuardError] = {}
        self.fatal: Optional[BmadGuardError] = None
        self.stderr_done = False
        self._out = threading.Thread(target=self._read_stdout, name="bmadguard-publish-stdout", daemon=True)
        self._err = threading.Thread(target=self._read_stderr, name="bmadguard-publish-stderr", daemon=True)
        self._out.start()
        self._err.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            for raw in self.proc.stdout:
                text = raw.decode("utf-8").strip()
                if not text:
                    continue
                try:
                    self.acks.put(json.loads(text))
                except ValueError:
                    log.error("bmadguard publish --stdin printed a line that is not JSON: %r", text[:200])
        finally:
            self.acks.put(None)  # EOF: the child is gone (or closed stdout)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        try:
            for raw in self.proc.stderr:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                kind, code, line, msg = parse_stderr_line(text)
                with self.cond:
                    if kind == "line" and code is not None and line is not None:
                        self.line_errors[line] = BmadGuardError(code, msg, 2, line)
                    elif kind == "error" and code is not None:
                        self.fatal = BmadGuardError(code, msg)
                    elif kind == "notice":
                        log.warning("bmadguard notice: %s: %s", code, msg)
                    elif text.strip():
                        log.warning("bmadguard publish --stdin: %s", text)
                    self.cond.notify_all()
        finally:
            with self.cond:
                self.stderr_done = True
                self.cond.notify_all()

    def alive(self) -> bool:
        return self.proc.poll() is None and self.pid == os.getpid()

    def send(self, payloads: Sequence[bytes], timeout: Optional[float]) -> List[Union[Dict[str, Any], BmadGuardError]]:
        """Writes the lines and waits until each has its answer: an ack (in input order) or a line error."""
        first = self.lines_sent + 1
        numbers = list(range(first, first + len(payloads)))
        self.lines_sent += len(payloads)
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(b"".join(payloads))
        except (BrokenPipeError, OSError):
            self._died()
        acks: List[Dict[str, Any]] = []
        deadline = None if timeout is None else _monotonic() + timeout
        # Only this batch's lines can have errors here: earlier batches took theirs out before returning.
        while True:
            with self.cond:
                errors = len(self.line_errors)
            if len(acks) + errors >= len(numbers):
                break
            wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - _monotonic()))
            if deadline is not None and wait <= 0:
                self.kill()
                raise BmadGuardError("PublishTimeout", f"bmadguard publish --stdin did not answer within {timeout} s "
                                     "(the events may or may not have been written)")
            try:
                ack = self.acks.get(timeout=wait)
            except queue.Empty:
                continue
            if ack is None:
                self.acks.put(None)  # keep the EOF mark for any later look
                # Line errors for our lines may still be on their way through stderr: read it to its end.
                with self.cond:
                    self.cond.wait_for(lambda: self.stderr_done, timeout=5)
                    errors = len(self.line_errors)
                if len(acks) + errors >= len(numbers):
                    break
                self._died()
            acks.append(ack)
        answers: List[Union[Dict[str, Any], BmadGuardError]] = []
        it = iter(acks)
        with self.cond:
            for n in numbers:
                answers.append(self.line_errors.pop(n) if n in self.line_errors else next(it))
        return answers

    def _died(self) -> None:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        with self.cond:
            self.cond.wait_for(lambda: self.stderr_done, timeout=5)
            fatal = self.fatal
        if fatal is not None:
            raise BmadGuardError(fatal.code, fatal.message, code)
        raise BmadGuardError("PublisherExited", f"bmadguard publish --stdin exited ({code}) before acknowledging "
                             "the events (they may or may not have been written)", code)

    def close(self) -> Optional[int]:
        if self.pid != os.getpid():
            return None  # a forked child must not close its parent's publisher
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            code: Optional[int] = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        self._out.join(timeout=5)
        self._err.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code

    def dispose(self) -> None:
        """After a failure: the child is ended (if it still runs) and its pipes closed."""
        if self.pid == os.getpid() and self.proc.poll() is None:
            self.kill()
        self.close()

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _monotonic() -> float:
    import time
    return time.monotonic()


class Bus:
    """A BmadGuard store, through the bmadguard CLI.

    ``store``: the store directory (default $BMADGUARD_STORE, else the CLI's default). ``cli``: the CLI command
    (a string split like a shell would, or a list; default $BMADGUARD_CLI, else ``bmadguard`` on PATH).
    ``auto_init``: create the store (``bmadguard init``) when a publish finds none. ``timeout``: seconds to wait
    for an acknowledgement before giving up (None: wait as long as the CLI runs; it fails by itself on a lock
    timeout). ``lock_timeout``: passed to the CLI's --lock-timeout.
    """

    def __init__(self, store: Optional[Any] = None, cli: Optional[Any] = None, *, auto_init: bool = False,
                 timeout: Optional[float] = None, lock_timeout: Optional[float] = None) -> None:
        self.cli = resolve_cli(cli)
        self.store = resolve_store(store)
        self.auto_init = auto_init
        self.timeout = timeout
        self.lock_timeout = lock_timeout
        self._lock = threading.Lock()
        self._publisher: Optional[_Publisher] = None
        self._closed = False

    # --- plumbing ----------------------------------------------------------------------------------------------
    def _store_args(self) -> List[str]:
        return ["--store", self.store] if self.store else []

    def _run(self, *args: str, timeout: Optional[float] = None) -> str:
        return run_cli(self.cli, list(args) + self._store_args(), timeout=timeout)

    def _publisher_for_send(self) -> _Publisher:
        p = self._publisher
        if p is not None and not p.alive():
            if p.pid == os.getpid():
                p.close()
            self._publisher = p = None
        if p is None:
            args = ["publish", "--stdin"] + self._store_args()
            if self.lock_timeout is not None:
                args += ["--lock-timeout", repr(float(self.lock_timeout))]
            p = self._publisher = _Publisher(self.cli + args)
        return p

    @staticmethod
    def _line(type: str, data: Any, source: Optional[str], correlation_id: Optional[str]) -> bytes:
        obj: Dict[str, Any] = {"type": type}
        if source is not None:
            obj["source"] = source
        if correlation_id is not None:
            obj["correlationId"] = correlation_id
        obj["data"] = {} if data is None else data
        try:
            # ensure_ascii keeps each line plain ASCII JSON; allow_nan=False: NaN is not JSON.
            return (json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":")) + "\n").encode("ascii")
        except (TypeError, ValueError) as ex:
            raise BmadGuardError("InvalidData", f"The event's data cannot be written as JSON: {ex}", 2) from ex

    def _send(self, lines: List[bytes]) -> List[Union[Dict[str, Any], BmadGuardError]]:
        if self._closed:
            raise BmadGuardError("BusClosed", "This Bus is closed.")
        with self._lock:
            for attempt in (1, 2):
                p = self._publisher_for_send()
                try:
                    return p.send(lines, self.timeout)
                except BmadGuardError as ex:
                    self._publisher = None
                    p.dispose()
                    # No store yet: the child exited at start, before reading a line, so nothing was written.
                    if ex.code == "StoreNotFound" and self.auto_init and attempt == 1:
                        self.init()
                        continue
                    raise
            raise AssertionError("unreachable")

    # --- publishing --------------------------------------------------------------------------------------------
    def publish(self, type: str, data: Any = None, source: Optional[str] = None,
                correlation_id: Optional[str] = None) -> Event:
        """Publishes one event; returns it (with seq, id, timestamp) once the CLI has acknowledged it, i.e. once
        it is durable. Raises BmadGuardError with the CLI's code (e.g. InvalidEventType, DataNotObject)."""
        answer = self._send([self._line(type, data, source, correlation_id)])[0]
        if isinstance(answer, BmadGuardError):
            raise answer
        return Event.from_json(answer)

    def publish_many(self, events: Iterable[Union[Mapping[str, Any], Tuple[Any, ...]]]) -> List[Event]:
        """Publishes several events in one go (the CLI groups them under shared fsyncs): each item is a mapping
        {"type","data","source","correlation_id"} or a tuple (type, data[, source[, correlation_id]]). Returns
        the acknowledged events in order; when some are rejected, raises PublishBatchError after the others
        were written (its ``published`` lists them)."""
        lines: List[bytes] = []
        for item in events:
            if isinstance(item, Mapping):
                lines.append(self._line(item["type"], item.get("data"), item.get("source"),
                                        item.get("correlation_id", item.get("correlationId"))))
            else:
                t = tuple(item) + (None,) * (4 - len(item))
                lines.append(self._line(t[0], t[1], t[2], t[3]))
        if not lines:
            return []
        answers = self._send(lines)
        published = [Event.from_json(a) for a in answers if not isinstance(a, BmadGuardError)]
        errors = [(i, a) for i, a in enumerate(answers) if isinstance(a, BmadGuardError)]
        if errors:
            raise PublishBatchError(published, errors)
        return published

    # --- reading -----------------------------------------------------------------------------------------------
    @staticmethod
    def _query_args(type: Optional[str], since: Optional[TimeLike], after: Optional[int], last: Optional[int],
                    source: Optional[str]) -> List[str]:
        args: List[str] = []
        if type is not None:
            args += ["--type", type]
        if source is not None:
            args += ["--source", source]
        if since is not None:
            try:
                args += ["--since", _time_arg(since)]
            except ValueError as ex:
                raise BmadGuardError("InvalidArgument", str(ex), 2) from ex
        if after is not None:
            args += ["--after", str(int(after))]
        if last is not None:
            args += ["--last", str(int(last))]
        return args

    def get_events(self, type: Optional[str] = None, since: Optional[TimeLike] = None, after: Optional[int] = None,
                   last: Optional[int] = None, source: Optional[str] = None) -> List[Event]:
        """Events in seq order (``bmadguard get``): ``type`` (wildcards * and ?), ``since`` an ISO time or datetime
        (inclusive, as the CLI's --since; naive = UTC), ``after`` a seq (exclusive), ``last`` the last N."""
        out = self._run("get", *self._query_args(type, since, after, last, source))
        return [Event.from_json(o) for o in json_lines(out)]

    def consume(self, consumer: str, type: Optional[str] = None, source: Optional[str] = None) -> List[Event]:
        """What the named consumer has not read yet (``bmadguard get --consumer``); the CLI moves its durable
        position past everything it prints, so the next call returns only newer events."""
        out = self._run("get", "--consumer", consumer, *self._query_args(type, None, None, None, source))
        return [Event.from_json(o) for o in json_lines(out)]

    def follow(self, consumer: Optional[str] = None, type: Optional[str] = None, after: Optional[int] = None,
               since: Optional[TimeLike] = None, source: Optional[str] = None) -> Iterator[Event]:
        """Streams events as they are published (``bmadguard get --follow``), forever, until the iterator is
        closed (``close()`` or leaving a ``for`` loop with break). With ``consumer`` the position is durable:
        a later consume/follow under the same name starts after the last event the CLI handed over. The CLI
        moves the position when it has written an event to the pipe, so events this process had not yet taken
        from the iterator when it stopped are not delivered again: keep what must not be missed idempotent and
        re-read it with ``get_events(after=...)`` if in doubt."""
        args = ["get", "--follow"] + self._store_args()
        if consumer is not None:
            args += ["--consumer", consumer]
        args += self._query_args(type, since, after, None, source)
        return _follow(self.cli + args)

    def stats(self) -> Dict[str, Any]:
        """The store's statistics (``bmadguard stats``): totalEvents, firstSeq, lastSeq, byType, bySource, ..."""
        result: Dict[str, Any] = json.loads(self._run("stats"))
        return result

    def init(self) -> Dict[str, Any]:
        """Creates the store, or confirms the one already there (``bmadguard init``)."""
        result: Dict[str, Any] = json.loads(self._run("init"))
        return result

    # --- lifetime ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Ends the publisher child (after it has answered everything sent). The Bus cannot publish afterwards."""
        with self._lock:
            self._closed = True
            p, self._publisher = self._publisher, None
        if p is not None:
            p.close()

    def __enter__(self) -> "Bus":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        p = getattr(self, "_publisher", None)
        if p is not None:
            try:
                p.close()
            except Exception:
                pass


def _follow(argv: List[str]) -> Iterator[Event]:
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as ex:
        raise BmadGuardError("CliNotFound", f"Cannot start '{argv[0]}': {ex.strerror}") from ex
    stderr: List[bytes] = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True)
    reader.start()
    finished = False
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if raw.strip():
                yield Event.from_json(json.loads(raw))
        finished = True
    finally:
        if proc.poll() is None:
            # SIGTERM: the CLI stops cleanly, keeping the consumer's position at what it handed over.
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        reader.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if finished and code != 0:
            raise error_from_stderr(b"".join(stderr).decode("utf-8", "replace"), code, "bmadguard get --follow")
