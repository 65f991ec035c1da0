"""Silences: "do not notify about these alerts until then", from the config or the CLI.

A silence matches alert keys by shell-style patterns on monitor, family, check and feature, and
expires at ``until_ms`` (event time of the window end, epoch ms; None = until removed). As in
Alertmanager, a silenced alert still fires inside the policy; only its notifications are held
back, and it is announced when the silence ends while it is still firing.

The CLI keeps its silences in a small JSON file (:class:`SilenceFile`) that the monitor reads
at start and whenever the file changes.

>>> s = Silence(reason="known backfill", feature="dti_*", until_ms=2_000)
>>> s.covers(monitor="m", family="numeric_drift", check="ks", feature="dti_trend", now_ms=1_000)
True
>>> s.covers(monitor="m", family="numeric_drift", check="ks", feature="dti_trend", now_ms=2_000)
False
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from monitor.records import Silence


class SilenceFile:
    """Silences stored as a JSON list in one file, written atomically.

    >>> import tempfile, pathlib
    >>> f = SilenceFile(pathlib.Path(tempfile.mkdtemp()) / "silences.json")
    >>> f.add(Silence(reason="deploy", feature="f0", until_ms=10))
    >>> [s.feature for s in f.active(now_ms=5)], f.active(now_ms=10)
    (['f0'], [])
    >>> f.prune(now_ms=10); f.load()
    []
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> list[Silence]:
        if not self.path.exists():
            return []
        return [Silence.from_dict(d) for d in json.loads(self.path.read_text() or "[]")]

    def active(self, now_ms: int) -> list[Silence]:
        return [s for s in self.load() if s.until_ms is None or now_ms < s.until_ms]

    def add(self, silence: Silence) -> None:
        self._write([*self.load(), silence])

    def remove(self, **match: str) -> int:
        """Remove every silence whose fields equal ``match``; returns how many went."""
        keep = [s for s in self.load()
                if not all(getattr(s, k) == v for k, v in match.items())]
        removed = len(self.load()) - len(keep)
        self._write(keep)
        return removed

    def prune(self, now_ms: int) -> None:
        """Drop expired silences."""
        self._write(self.active(now_ms))

    def _write(self, silences: list[Silence]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".silences-")
        with os.fdopen(fd, "w") as f:
            json.dump([s.to_dict() for s in silences], f, indent=1)
        os.replace(tmp, self.path)
