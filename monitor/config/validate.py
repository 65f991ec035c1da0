"""Schema validation of the config's dict form: JSON Schema 2020-12 against
``schemas/monitor-config.schema.json``, with one message per bad field that names it by its
path, says what was expected and what was given (never a secret's value), and suggests the
nearest known key for a misspelled one. Used by :mod:`monitor.config.build`.

>>> validate({"monitor": "m", "kafka": {"bootstrap": "k:9092"}, "stream": {"topic": "t"},
...           "features": {"numeric": ["x"]}, "windows": {"size": "abc"},
...           "reference": {"profile": "/r"}})
Traceback (most recent call last):
...
monitor.errors.ConfigError: windows.size: expected a duration with its unit, like "60s" or "5m" (ms, s, m, h, d), above 0, got "abc"
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from monitor.errors import ConfigError

#: ``monitor/schemas`` is the repository's ``schemas/`` (a link in the source tree, package
#: data in the wheel): one path, found the same way in both
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "monitor-config.schema.json"
_SECRET_KEYS = {"password", "token", "webhook_url", "key_password", "sasl.password",
                "basic.auth.user.info", "bearer.auth.token",
                "ssl.key.password", "sasl.oauthbearer.client.secret"}


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def validate(d: Any) -> None:
    """Check ``d`` against the JSON Schema; raise one ConfigError listing every problem."""
    if not isinstance(d, dict):
        raise ConfigError("", f"expected a mapping at the top of the config, got {_show(d)}")
    problems: dict[str, str] = {}
    for err in sorted(_validator().iter_errors(d), key=lambda e: [str(x) for x in e.path]):
        for path, msg in _explain(err):
            problems.setdefault(path, msg)
    if problems:
        items = sorted(problems.items())
        raise ConfigError(items[0][0], items[0][1], items)


def _fmt_path(parts) -> str:
    out = ""
    for x in parts:
        out += f"[{x}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out


def _show(v: Any) -> str:
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    s = json.dumps(v, default=str)
    return s if len(s) <= 60 else s[:57] + "..."


def _explain(err: jsonschema.ValidationError) -> list[tuple[str, str]]:
    path = _fmt_path(err.absolute_path)
    kw, schema, inst = err.validator, err.schema, err.instance
    if kw == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        out = []
        for k in sorted(set(inst) - set(known), key=str):
            msg = "unknown field"
            if str(k) in _SECRET_KEYS:
                msg += (f": secrets are never written in the config; give {k}_env (an "
                        f"environment variable name) or {k}_file (a path) instead")
            else:
                near = difflib.get_close_matches(str(k), known, n=1) or \
                    [x for x in known if x.startswith(str(k))][:1]
                msg += f" (did you mean {near[0]!r}?)" if near else ""
                msg += f"; expected one of: {', '.join(known)}" if known else ""
            out.append((_fmt_path([*err.absolute_path, k]), msg))
        return out
    if kw == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return [(_fmt_path([*err.absolute_path, missing]), "required field is missing")]
    if kw == "uniqueItems":
        seen, dup = [], None
        for x in inst:
            if x in seen:
                dup = x
                break
            seen.append(x)
        return [(path, f"{_show(dup)} is listed more than once")]
    if "a duration" in schema.get("x-expected", "") and _bare_number(inst):
        return [(path, unitless(inst))]
    if kw == "enum":
        want = "one of " + ", ".join(json.dumps(x) for x in err.validator_value)
    elif "x-expected" in schema:
        want = schema["x-expected"]
    elif kw == "type":
        t = err.validator_value
        want = " or ".join(t) if isinstance(t, list) else {
            "object": "a mapping", "array": "a list", "integer": "an integer",
            "number": "a number", "string": "a string", "boolean": "true or false",
        }.get(t, t)
    elif kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
              "exclusiveMaximum": "<"}[kw]
        want = f"a number {op} {err.validator_value}"
    else:
        want = err.message
    return [(path, f"expected {want}, got {_show(inst)}")]


def _bare_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def unitless(v: Any) -> str:
    """The message for a duration given as a bare number: it names the fix.

    >>> unitless(60)
    '60 has no unit; write 60s or 60ms'
    """
    return f"{_show(v)} has no unit; write {_show(v)}s or {_show(v)}ms"
