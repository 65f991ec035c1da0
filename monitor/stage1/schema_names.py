"""New field names seen in sampled messages, bounded: input must not grow our memory.

A producer may send any number of field names the config neither reads nor knows. They are
reported as ``schema_new:<name>`` counters per window, so the names that can appear are
bounded, per decoder (one per stage-1 process), for its whole life:

- at most :data:`MAX_NAMES_PER_EVENT` new names per sampled message (the first in sorted
  order; the rest count once as :data:`OTHER`);
- at most :data:`MAX_NAMES` distinct names ever: once that many were seen, every further
  new name counts as :data:`OTHER` (a schema change shows in the first names anyway);
- a name is cut to :data:`MAX_NAME_CHARS` characters, and escapes what is not valid Unicode
  (an unpaired surrogate), so it serializes anywhere.

So one window holds at most ``MAX_NAMES + 1`` name counters, whatever the input (a hostile
stream of 30,000 events with random keys made 9,380 before this bound).

>>> names = NewFieldNames(max_names=2)
>>> names.of(["a", "b", "known"], {"known"}), names.of(["c", "a"], set())
(('a', 'b'), ('(other)', 'a'))
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

MAX_NAMES = 64
MAX_NAMES_PER_EVENT = 8
MAX_NAME_CHARS = 80
OTHER = "(other)"


class NewFieldNames:
    """The bounded set of new field names one decoder reports (see the module docstring)."""

    def __init__(self, max_names: int = MAX_NAMES,
                 max_per_event: int = MAX_NAMES_PER_EVENT) -> None:
        self.max_names, self.max_per_event = max_names, max_per_event
        self.seen: set[str] = set()

    def of(self, keys: Iterable[str], known: Collection[str]) -> tuple[str, ...]:
        """The sorted new names of one message's keys, bounded."""
        new = sorted(k for k in keys if k not in known)
        if not new:
            return ()
        out: set[str] = set()
        for k in new[: self.max_per_event]:
            name = _clean(k)
            if name in self.seen or len(self.seen) < self.max_names:
                self.seen.add(name)
                out.add(name)
            else:
                out.add(OTHER)
        if len(new) > self.max_per_event:
            out.add(OTHER)
        return tuple(sorted(out))


def _clean(name: str) -> str:
    name = name[:MAX_NAME_CHARS]
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return name
