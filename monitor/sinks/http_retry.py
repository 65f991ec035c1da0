"""What the HTTP sinks (the generic webhook, Slack's incoming webhook) share: which answer no
retry can mend, and the bounded memory of the alerts already delivered.

>>> [permanent(s) for s in (200, 400, 404, 408, 429, 500, 503)]
[False, True, True, False, False, False, False]
>>> seen = SeenIds(limit=2)
>>> seen.add("a"); seen.add("b"); seen.add("c")
>>> ("a" in seen, "c" in seen, len(seen))
(False, True, 2)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

#: 4xx answers that say "later", not "never": timeout, too early, too many requests
RETRY_STATUSES = frozenset({408, 425, 429})

V = TypeVar("V")


def permanent(status: int) -> bool:
    """A 4xx other than :data:`RETRY_STATUSES`: the request is wrong (URL, token, channel),
    so the sink fails its health at once instead of retrying."""
    return 400 <= status < 500 and status not in RETRY_STATUSES


class SeenIds(Generic[V]):
    """Alert ids already delivered (with a value, e.g. Slack's message ts), newest kept: a
    repeated offer of a delivered alert sends nothing."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._d: OrderedDict[str, V | None] = OrderedDict()

    def add(self, alert_id: str, value: V | None = None) -> None:
        self._d[alert_id] = value
        while len(self._d) > self.limit:
            self._d.popitem(last=False)

    def get(self, alert_id: str | None) -> V | None:
        return self._d.get(alert_id) if alert_id is not None else None

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._d

    def __len__(self) -> int:
        return len(self._d)
