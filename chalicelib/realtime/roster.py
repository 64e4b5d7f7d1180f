"""A room's members as the publisher last read them, reused while nobody joined or left.

Reading a room's members is a DynamoDB Query of one item per member on every fan-out round (in the
local emulator ~0.6 ms an item: 30 ms of a 50-member round). Every join and leave counts itself on
the room's state item (`roster`, connections.py) after it is written, and the publisher takes the
turn with a read of that item, so it knows whether the list it has is still the room's: same
numbering (`epoch`) and same roster number -> the same members. Memberships past their expiry are
dropped at use, as the Query would drop them. Access is not cached: `reachable` re-checks each
member's principal before every page, as before.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from chalicelib.store import connections

# Rooms remembered per container; the least recently published falls out first.
MAX_ROOMS = 256

_lock = threading.Lock()
_known: OrderedDict[str, tuple[tuple[str, int], list[dict[str, Any]]]] = OrderedDict()


def principals(session_id: str, state: connections.RoomState) -> list[dict[str, Any]]:
    """The room's live members (as connections.member_principals lists them) when its state is `state`."""
    version = (state.epoch, state.roster) if state.epoch is not None and state.roster is not None else None
    if version is not None:
        with _lock:
            known = _known.get(session_id)
            if known is not None and known[0] == version:
                _known.move_to_end(session_id)
                now = time.time()
                return [m for m in known[1] if m.get("expiresAt", now + 1) > now]
    members = connections.member_principals(session_id)
    if version is not None:
        with _lock:
            _known[session_id] = (version, members)
            _known.move_to_end(session_id)
            while len(_known) > MAX_ROOMS:
                _known.popitem(last=False)
    return members


def forget() -> None:
    """Every remembered room (tests; a restored database)."""
    with _lock:
        _known.clear()
