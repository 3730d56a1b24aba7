"""The sensor cursor: everything the sensor must remember between ticks, as JSON.

Open incidents (so a still-broken check is not re-announced), failed run ids already
reported and the newest run time looked at (so a run is reported once), and the outbox of
messages not yet accepted by every channel (so a failed delivery is retried, not lost).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipelines.notify.incidents import Incident
from pipelines.notify.senders import Pending

VERSION = 1


@dataclass(frozen=True)
class Cursor:
    open: dict[str, Incident] = field(default_factory=dict)
    seen_runs: tuple[str, ...] = ()
    runs_after: float | None = None  # update time of the newest failed run looked at
    outbox: tuple[Pending, ...] = ()

    def dumps(self) -> str:
        data: dict[str, Any] = {
            "version": VERSION,
            "open": [i.to_json() for i in self.open.values()],
            "seen_runs": list(self.seen_runs),
            "runs_after": self.runs_after,
            "outbox": [p.to_json() for p in self.outbox],
        }
        return json.dumps(data, ensure_ascii=False, sort_keys=True)


def load_cursor(text: str | None) -> tuple[Cursor, str | None]:
    """The cursor, or an empty one and why when it is missing or unreadable.

    An unreadable cursor must not stop notifications: starting empty re-announces what is
    open now, which is better than going silent.
    """
    if not text:
        return Cursor(), None
    try:
        raw = json.loads(text)
        if raw.get("version") != VERSION:
            return Cursor(), f"cursor version {raw.get('version')!r} unknown; starting afresh"
        incidents = [Incident.from_json(i) for i in raw.get("open") or ()]
        runs_after = raw.get("runs_after")
        return (
            Cursor(
                open={i.key: i for i in incidents},
                seen_runs=tuple(raw.get("seen_runs") or ()),
                runs_after=float(runs_after) if runs_after is not None else None,
                outbox=tuple(Pending.from_json(p) for p in raw.get("outbox") or ()),
            ),
            None,
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        return Cursor(), f"cursor unreadable ({type(error).__name__}); starting afresh"
