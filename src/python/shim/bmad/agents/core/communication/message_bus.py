"""The agents' old bus module path, now backed by BmadGuard (a shim; see docs/migrating-bmad-agents.md).

Copy this file over bmad/agents/core/communication/message_bus.py in the agents' tree: every agent that does
``from bmad.agents.core.communication.message_bus import publish, subscribe`` then publishes to the BmadGuard
store ($BMADGUARD_STORE) through the bmadguard CLI ($BMADGUARD_CLI), with no other change. To roll back, put the
old file back.
"""

from bmadguard.message_bus import (  # noqa: F401  (re-exported names, the old module's surface)
    CLEARED_EVENT_TYPE,
    clear_events,
    configure,
    get_events,
    get_statistics,
    publish,
    subscribe,
    unsubscribe,
)

__all__ = ["publish", "subscribe", "unsubscribe", "get_events", "clear_events", "get_statistics", "configure"]
