"""Progress bars for long commands (``replay``, ``profile build``): on a terminal only.

A bar shows events done, events/s and the time left (tqdm), on stderr, and only when stderr
is a terminal, so scripts, pipes, CI logs and tests stay quiet. ``STREAMDRIFT_PROGRESS=1``
or ``0`` forces it on or off.

>>> with bar(10, "replay", enabled=False) as b:
...     b.update(10)
>>> b.n
10
"""

from __future__ import annotations

import os
import sys
from typing import Any


class _Quiet:
    """The bar's verbs, doing nothing but counting."""

    def __init__(self, total: int | None) -> None:
        self.total, self.n = total, 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def reset(self, total: int | None = None) -> None:
        self.total, self.n = total, 0

    def set_description(self, desc: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Quiet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def enabled_here() -> bool:
    forced = os.environ.get("STREAMDRIFT_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    return sys.stderr.isatty()


def bar(total: int | None, desc: str, unit: str = "events", enabled: bool | None = None):
    """A tqdm bar on stderr when ``enabled`` (default: stderr is a terminal), else a quiet
    stand-in with the same verbs."""
    if not (enabled_here() if enabled is None else enabled):
        return _Quiet(total)
    import shutil

    from tqdm import tqdm

    # a terminal that reports no size (0 x 0: some ptys, `script`) would get an empty bar
    # from tqdm (it hides bars below the screen's last row): say 100 x 24 then
    size = shutil.get_terminal_size((100, 24))
    return tqdm(total=total, desc=desc, unit=f" {unit}", unit_scale=True,
                ncols=min(size.columns or 100, 120), nrows=size.lines or 24,
                smoothing=0.1, file=sys.stderr, mininterval=0.2)


def count_lines(path, chunk: int = 1 << 22) -> int:
    """Newlines in a file, read in 4 MiB chunks (the rows of a CSV / JSON-lines file, for a
    bar's total; a tenth of a second per 100 MB)."""
    n = 0
    with open(path, "rb") as f:
        while b := f.read(chunk):
            n += b.count(b"\n")
    return n
