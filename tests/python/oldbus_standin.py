"""A faithful stand-in for the BMAD agents' old file bus (bmad.agents.core.communication.message_bus), for tests
and benchmarks only: the same lock, the same whole-file rewrite, the same recovery, the same API.

- ``file_lock``: opens ``<file>.lock`` for writing, ``flock(LOCK_EX)``, and after ``LOCK_UN`` DELETES the lock
  file (the defect: the next writer creates and locks a new inode while another still holds the old one).
  ``configure(keep_lock_file=True)`` is the one-line fix (the lock file is kept), for the comparison.
- ``publish``: under the lock, loads the file (a damaged one from ``<file>.backup``), appends
  ``{"timestamp": datetime.now().isoformat(), "event", "data"}``, copies the file to ``<file>.backup``, dumps the
  whole context (indent=2) to a temp file in the system temp directory, validates it, ``shutil.move``s it over
  the file (no fsync anywhere), validates the result; True on success. Subscribers are called in-process.
- ``get_events`` reads without the lock and filters ``timestamp > since`` (string comparison, exclusive).
"""

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

log = logging.getLogger("oldbus_standin")

SHARED_CONTEXT_PATH = Path(os.environ.get("OLDBUS_FILE", "shared_context.json"))
KEEP_LOCK_FILE = os.environ.get("OLDBUS_KEEP_LOCK", "") == "1"
LOCK = threading.Lock()
_subscribers: Dict[str, List[Callable[..., Any]]] = {}


def configure(path: str, keep_lock_file: bool = False) -> None:
    global SHARED_CONTEXT_PATH, KEEP_LOCK_FILE
    SHARED_CONTEXT_PATH = Path(path)
    KEEP_LOCK_FILE = keep_lock_file


@contextlib.contextmanager
def file_lock(filepath: Path) -> Iterator[None]:
    lock_file = Path(f"{filepath}.lock")
    with open(lock_file, "w") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            if not KEEP_LOCK_FILE and lock_file.exists():
                lock_file.unlink()  # the old bus's defect


def _valid_data(data: Any) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        return False
    return all(isinstance(e, dict) and "timestamp" in e and "event" in e and "data" in e for e in data["events"])


def _valid_file(path: Any) -> bool:
    try:
        with open(path) as f:
            return _valid_data(json.load(f))
    except Exception:
        return False


def _backup(path: Path) -> Optional[Path]:
    try:
        if path.exists():
            backup = Path(f"{path}.backup")
            shutil.copy2(path, backup)
            return backup
    except Exception:
        pass
    return None


def _restore(path: Path, backup: Path) -> bool:
    try:
        if backup.exists():
            shutil.copy2(backup, path)
            return True
    except Exception:
        pass
    return False


def _safe_write(data: Dict[str, Any], path: Path) -> bool:
    backup = _backup(path)
    temp = tempfile.NamedTemporaryFile(mode="w", delete=False)
    try:
        if not _valid_data(data):
            return False
        json.dump(data, temp, indent=2)
        temp.close()
        if not _valid_file(temp.name):
            os.unlink(temp.name)
            return False
        shutil.move(temp.name, path)
        if not _valid_file(path):
            if backup is not None:
                _restore(path, backup)
            return False
        return True
    except Exception:
        if os.path.exists(temp.name):
            os.unlink(temp.name)
        if backup is not None and backup.exists():
            _restore(path, backup)
        return False


def _load() -> Dict[str, Any]:
    try:
        if not SHARED_CONTEXT_PATH.exists():
            return {"events": []}
        if _valid_file(SHARED_CONTEXT_PATH):
            with open(SHARED_CONTEXT_PATH) as f:
                loaded: Dict[str, Any] = json.load(f)
                return loaded
        backup = Path(f"{SHARED_CONTEXT_PATH}.backup")
        if backup.exists() and _valid_file(backup):
            _restore(SHARED_CONTEXT_PATH, backup)
            with open(SHARED_CONTEXT_PATH) as f:
                restored: Dict[str, Any] = json.load(f)
                return restored
        return {"events": []}
    except Exception:
        return {"events": []}


def publish(event: str, data: Any) -> bool:
    try:
        with file_lock(SHARED_CONTEXT_PATH):
            context = _load()
            event_obj = {"timestamp": datetime.now().isoformat(), "event": event, "data": data}
            context["events"].append(event_obj)
            if not _safe_write(context, SHARED_CONTEXT_PATH):
                return False
            for callback in _subscribers.get(event, []):
                try:
                    callback(event_obj)
                except Exception:
                    log.exception("subscriber failed")
            return True
    except Exception:
        return False


def subscribe(event_type: str, callback: Callable[..., Any]) -> None:
    _subscribers.setdefault(event_type, []).append(callback)


def unsubscribe(event_type: str, callback: Callable[..., Any]) -> None:
    if event_type in _subscribers and callback in _subscribers[event_type]:
        _subscribers[event_type].remove(callback)


def get_events(event_type: Optional[str] = None, since: Optional[str] = None) -> List[Dict[str, Any]]:
    try:
        events: List[Dict[str, Any]] = _load().get("events", [])
        if event_type:
            events = [e for e in events if e["event"] == event_type]
        if since:
            events = [e for e in events if e["timestamp"] > since]
        return events
    except Exception:
        return []


def clear_events() -> bool:
    try:
        with file_lock(SHARED_CONTEXT_PATH):
            return _safe_write({"events": []}, SHARED_CONTEXT_PATH)
    except Exception:
        return False


def get_statistics() -> Dict[str, Any]:
    try:
        events = _load().get("events", [])
        types: Dict[str, int] = {}
        for e in events:
            types[e.get("event", "unknown")] = types.get(e.get("event", "unknown"), 0) + 1
        return {"total_events": len(events), "event_types": types,
                "file_size": SHARED_CONTEXT_PATH.stat().st_size if SHARED_CONTEXT_PATH.exists() else 0,
                "backup_exists": Path(f"{SHARED_CONTEXT_PATH}.backup").exists()}
    except Exception as ex:
        return {"error": str(ex)}
