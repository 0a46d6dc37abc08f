"""Drop-in for the BMAD agents' file bus ``bmad.agents.core.communication.message_bus``, over a BmadGuard store.

Same names, signatures and return values as the old module; an agent switches with one import line::

    from bmadguard import message_bus            # was: from bmad.agents.core.communication import message_bus
    from bmadguard.message_bus import publish, subscribe

What stays the same (agents depend on it):
  - ``publish(event, data) -> bool``: True only once the event is durable in the store (the CLI acknowledged it
    after its fsync); False (and an error logged) when it was not accepted. Subscribers registered in this
    process are called with ``{"timestamp","event","data"}`` after a successful publish, as before; an exception
    in a callback is logged and does not change the result.
  - ``get_events(event_type=None, since=None) -> list`` of ``{"timestamp","event","data"}`` dicts, oldest first,
    from every process publishing to the store. ``since`` is EXCLUSIVE, as in the old bus: an agent polling
    "since the last timestamp I saw" does not get that event again. Timestamps are naive UTC ISO 8601 with
    microseconds (``2026-12-04T16:27:00.123456``), as ``bmadguard export`` writes them; a naive ``since`` is UTC.
  - ``subscribe(event_type, callback)`` / ``unsubscribe(event_type, callback)``: in-process, as before.
  - ``clear_events() -> bool``, ``get_statistics() -> dict`` ({"total_events","event_types","file_size",
    "backup_exists"}; {"error": ...} when the store cannot be read).

What differs, on purpose:
  - ``clear_events()`` deletes nothing (the store is append-only). It publishes a durable marker event (type
    ``message-bus.cleared``); ``get_events`` and ``get_statistics`` in every process return only what came after
    the newest marker. ``bmadguard get`` and ``bmadguard export`` still show everything, markers included.
  - Event names must be valid BmadGuard types (``^[A-Za-z][A-Za-z0-9_-]*(\\.[A-Za-z0-9_-]+)*$``, e.g.
    ``workflow_completed``); ``publish`` returns False for others. Data that is not a JSON object is stored as
    ``{"value": data}`` (as ``bmadguard import-legacy`` stores such legacy events) and read back that way.

Configuration: $BMADGUARD_STORE (the store; created on first publish if missing), $BMADGUARD_CLI (the CLI
command), $BMADGUARD_SOURCE (the source recorded on each event; default ``bmad-agent``), or ``configure()``.
"""

import logging
import os
import threading
from typing import Any, Callable, Dict, List, Optional

from ._cli import BmadGuardError
from .bus import Bus, Event, parse_time

__all__ = ["publish", "subscribe", "unsubscribe", "get_events", "clear_events", "get_statistics", "configure",
           "CLEARED_EVENT_TYPE"]

log = logging.getLogger("bmadguard.message_bus")

CLEARED_EVENT_TYPE = "message-bus.cleared"
DEFAULT_SOURCE = "bmad-agent"

_subscribers: Dict[str, List[Callable[..., Any]]] = {}
_state_lock = threading.Lock()
_bus: Optional[Bus] = None
_source: Optional[str] = None


def configure(store: Optional[str] = None, cli: Optional[Any] = None, source: Optional[str] = None) -> None:
    """Points the module at a store / CLI / source (default: the environment). Closes the previous Bus."""
    global _bus, _source
    with _state_lock:
        old, _bus = _bus, Bus(store=store, cli=cli, auto_init=True)
        _source = source
    if old is not None:
        old.close()


def _get_bus() -> Bus:
    global _bus
    with _state_lock:
        if _bus is None:
            _bus = Bus(auto_init=True)
        return _bus


def _legacy_timestamp(ev: Event) -> str:
    """Naive UTC with microseconds, the format ``bmadguard export`` writes for legacy readers."""
    return parse_time(ev.timestamp).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _legacy(ev: Event) -> Dict[str, Any]:
    return {"timestamp": _legacy_timestamp(ev), "event": ev.type, "data": ev.data}


def publish(event: str, data: Any) -> bool:
    """Publishes an event; True once it is durable in the store, False when it was not accepted."""
    payload = data if isinstance(data, dict) else {"value": data}
    try:
        ev = _get_bus().publish(event, payload, source=_source or os.environ.get("BMADGUARD_SOURCE") or DEFAULT_SOURCE)
    except BmadGuardError as ex:
        log.error("[MessageBus] Event %r not published: %s", event, ex)
        return False
    except Exception as ex:  # the old bus never raised from publish
        log.error("[MessageBus] Event %r not published: %s", event, ex)
        return False
    log.info("[MessageBus] Event published: %s", event)
    event_obj = {"timestamp": _legacy_timestamp(ev), "event": event, "data": data}
    for callback in list(_subscribers.get(event, [])):
        try:
            callback(event_obj)
        except Exception:
            log.exception("[MessageBus] Error in subscriber callback for %r", event)
    return True


def subscribe(event_type: str, callback: Callable[..., Any]) -> None:
    """Calls ``callback(event_obj)`` after each successful publish of ``event_type`` in this process."""
    _subscribers.setdefault(event_type, []).append(callback)


def unsubscribe(event_type: str, callback: Callable[..., Any]) -> None:
    """Removes a callback added by subscribe (once); unknown ones are ignored."""
    callbacks = _subscribers.get(event_type)
    if callbacks and callback in callbacks:
        callbacks.remove(callback)


def _visible(since: Optional[str]) -> List[Event]:
    """Events after the newest clear marker (markers excluded); with ``since``, only those strictly later."""
    bus = _get_bus()
    since_time = None
    if since:
        try:
            since_time = parse_time(since)
        except ValueError:
            since_time = None  # not ISO 8601: compared as text below, as the old bus did
    try:
        # --since is inclusive and sees the markers in its range; a marker before it precedes every event it
        # returns (the log's timestamps never go backwards), so it does not change the answer.
        events = bus.get_events(since=since_time) if since_time is not None else bus.get_events()
    except BmadGuardError as ex:
        if ex.code == "StoreNotFound":
            return []
        raise
    start = 0
    for i, ev in enumerate(events):
        if ev.type == CLEARED_EVENT_TYPE:
            start = i + 1
    visible = events[start:]
    if since_time is not None:
        visible = [e for e in visible if parse_time(e.timestamp) > since_time]  # exclusive, to the microsecond
    elif since:
        visible = [e for e in visible if _legacy_timestamp(e) > since]
    return visible


def get_events(event_type: Optional[str] = None, since: Optional[str] = None) -> List[Dict[str, Any]]:
    """``{"timestamp","event","data"}`` dicts, oldest first; ``event_type`` exact, ``since`` exclusive."""
    try:
        events = _visible(since)
    except Exception as ex:
        log.error("[MessageBus] Error getting events: %s", ex)
        return []
    if event_type:
        events = [e for e in events if e.type == event_type]
    return [_legacy(e) for e in events]


def clear_events() -> bool:
    """Hides every event published so far from get_events (in every process); nothing is deleted."""
    try:
        _get_bus().publish(CLEARED_EVENT_TYPE, {"pid": os.getpid()},
                           source=_source or os.environ.get("BMADGUARD_SOURCE") or DEFAULT_SOURCE)
    except Exception as ex:
        log.error("[MessageBus] Error clearing events: %s", ex)
        return False
    log.info("[MessageBus] All events cleared (marker published; history kept in the store).")
    return True


def get_statistics() -> Dict[str, Any]:
    """{"total_events","event_types","file_size","backup_exists","store"} for the events get_events returns."""
    try:
        events = _visible(None)
        event_types: Dict[str, int] = {}
        for e in events:
            event_types[e.type] = event_types.get(e.type, 0) + 1
        bus = _get_bus()
        try:
            stats = bus.stats()
            size = int(stats.get("bytesOnDisk", 0))
            store = stats.get("store")
            backup_exists = bool(bus._run("backups").strip())
        except BmadGuardError as ex:
            if ex.code != "StoreNotFound":
                raise
            size, store, backup_exists = 0, bus.store, False
        return {"total_events": len(events), "event_types": event_types, "file_size": size,
                "backup_exists": backup_exists, "store": store}
    except Exception as ex:
        log.error("[MessageBus] Error getting statistics: %s", ex)
        return {"error": str(ex)}
