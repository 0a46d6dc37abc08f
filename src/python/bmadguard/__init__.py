"""bmadguard: Python client for BmadGuard stores, through the bmadguard CLI (standard library only).

    from bmadguard import Bus
    with Bus() as bus:                     # store: $BMADGUARD_STORE, else the CLI's default
        ev = bus.publish("story.created", {"id": 7}, source="architect")   # returns once durable
        for e in bus.consume("reviewer"):  # what the consumer has not read yet; position kept in the store
            ...

Agents on the old file bus switch with one import line: ``from bmadguard import message_bus``.
"""

from ._cli import BmadGuardError
from .bus import Bus, Event, PublishBatchError, parse_time

__all__ = ["Bus", "Event", "BmadGuardError", "PublishBatchError", "parse_time", "__version__"]
__version__ = "0.1.0"
