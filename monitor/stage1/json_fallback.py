"""The JSON parsers of last resort: never raise, whatever the bytes.

:func:`parse_any` is the decoder's slow path for one message: orjson, else the standard
library, which also reads ``NaN`` / ``Infinity`` literals, numbers beyond float range
(``1e400``) and integers of any length (past 4,000 digits they are read as floats, i.e.
``inf``, like every integer beyond float range). Deep nesting, invalid UTF-8, truncation and
the like come back as an error text, never as an exception.

>>> parse_any(b'{"a": NaN}')[0]
{'a': nan}
>>> parse_any(b'{"id": -9223372036854775809}')[0]  # orjson would read a float
{'id': -9223372036854775809}
>>> parse_any(b'{"a": ' + b'9' * 5000 + b'}')[0]
{'a': inf}
>>> parse_any(b'[' * 100_000)[1][:28]
'not JSON: RecursionError: ma'
>>> top_level_keys(b'{"a": 1, "b": {"c": [[]]}, "d": NaN}')
['a', 'b', 'd']
>>> top_level_keys(b'\\xff not json'), top_level_keys(b'{"a": ' + b'[' * 5000 + b']' * 5000 + b'}')
([], [])
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import orjson

__all__ = ["parse_any", "top_level_keys"]

_KEYS = msgspec.json.Decoder(dict[str, msgspec.Raw])  # values skipped, not built
_LONG_DIGITS = re.compile(rb"\d{19}")  # maybe an integer past 64 bits: orjson reads a float


def parse_any(v: bytes) -> tuple[Any, str | None]:
    """(value, None) or (None, error text)."""
    if _LONG_DIGITS.search(v) is None:  # integers as msgspec reads them (of any length)
        try:
            return orjson.loads(v), None
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(v, parse_int=_int), None
    except (ValueError, RecursionError, MemoryError) as e:  # UnicodeDecodeError is a ValueError
        return None, f"not JSON: {type(e).__name__}: {str(e)[:200]}"


def _int(s: str) -> int | float:
    return int(s) if len(s) < 4000 else float(s)


def top_level_keys(v: bytes | None) -> list[str]:
    """The keys of a JSON object message (values are skipped, not built); [] when the
    message is not a JSON object."""
    if v is None:
        return []
    try:
        return list(_KEYS.decode(v))
    except Exception:  # noqa: BLE001 - NaN literals, a BOM ...: the slower parsers decide
        obj, _ = parse_any(v)
        return list(obj) if isinstance(obj, dict) else []
