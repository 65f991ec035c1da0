"""Durations need a unit: a bare number for any duration setting is a config error that names
the field and the fix, one line (``windows.size: 60 has no unit; write 60s or 60ms``), never a
silent 60 milliseconds. Every duration key of the schema is walked, so a new one is covered."""

from __future__ import annotations

import json

import pytest

from monitor import config as C
from monitor.cli import main
from monitor.config.build import SCHEMA_PATH
from monitor.errors import ConfigError
from tests.e2e_harness import config_dict, write_config

SCHEMA = json.loads(SCHEMA_PATH.read_text())
DURATION_REFS = {"#/$defs/duration", "#/$defs/positiveDuration"}


def _is_duration(node: dict) -> bool:
    if node.get("$ref") in DURATION_REFS:
        return True
    return any(_is_duration(x) for x in node.get("oneOf", ()) if isinstance(x, dict))


def _resolve(node: dict) -> dict:
    ref = node.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return _resolve(SCHEMA["$defs"][ref.split("/")[-1]])
    return node


def duration_paths(node: dict = SCHEMA, prefix: tuple = ()) -> list[tuple]:
    """Every path to a duration field: strings are keys, 0 is the first item of a list."""
    node = _resolve(node)
    out = []
    for k, sub in node.get("properties", {}).items():
        if _is_duration(sub):
            out.append((*prefix, k))
        else:
            out.extend(duration_paths(sub, (*prefix, k)))
    if isinstance(node.get("items"), dict):
        out.extend(duration_paths(node["items"], (*prefix, 0)))
    for alt in node.get("oneOf", ()):
        if isinstance(alt, dict) and alt.get("type") != "null":
            out.extend(duration_paths(alt, prefix))
    return sorted(set(out), key=str)


def _set(d: dict, path: tuple, value) -> None:
    cur = d
    for here, nxt in zip(path, path[1:]):
        if isinstance(cur, list):
            while len(cur) <= here:
                cur.append({})
            cur = cur[here]
        else:
            cur = cur.setdefault(here, [] if nxt == 0 else {})
    cur[path[-1]] = value


def _name(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p)
                   for i, p in enumerate(path))


PATHS = duration_paths()


def test_the_schema_walk_finds_the_known_durations():
    names = {_name(p) for p in PATHS}
    assert {"windows.size", "windows.allowed_lateness", "windows.idle_timeout",
            "stream.snapshot_interval", "alerts.repeat_interval", "triggers.cooldown",
            "labels.max_delay", "checks.quality.max_event_delay"} <= names, names


@pytest.mark.parametrize("path", PATHS, ids=_name)
def test_a_bare_number_is_an_error_naming_the_field_and_the_fix(path):
    d = {"monitor": "m", "kafka": {"bootstrap": "127.0.0.1:9092"}, "stream": {"topic": "t"},
         "features": {"numeric": ["x"]}, "windows": {"size": "60s"},
         "reference": {"profile": "ref.profile"}}
    _set(d, path, 60)
    with pytest.raises(ConfigError) as e:
        C.from_dict(d, env={})
    want = (_name(path), "60 has no unit; write 60s or 60ms")
    assert want in e.value.problems, e.value.problems


@pytest.mark.parametrize("value, ms", [("60s", 60_000), ("60ms", 60), ("1.5m", 90_000)])
def test_a_duration_with_a_unit_still_reads(value, ms):
    d = {"monitor": "m", "kafka": {"bootstrap": "127.0.0.1:9092"}, "stream": {"topic": "t"},
         "features": {"numeric": ["x"]}, "windows": {"size": value},
         "reference": {"profile": "ref.profile"}}
    assert C.from_dict(d, env={}).windows.size_ms == ms


def test_parse_duration_refuses_a_bare_number():
    with pytest.raises(ValueError, match="no unit"):
        C.parse_duration(60)
    with pytest.raises(ValueError, match="no unit"):
        C.parse_duration("60")


def test_the_command_line_says_it_in_one_line(tmp_path, capsys):
    d = config_dict(tmp_path, "127.0.0.1:1", "t")
    d["windows"]["size"] = 60
    cfg = write_config(tmp_path, d)
    (tmp_path / "e.jsonl").write_text("{}\n")
    rc = main(["replay", "-c", str(cfg), "--input", str(tmp_path / "e.jsonl"),
               "--reports", str(tmp_path / "r.jsonl")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip() == "streamdrift: windows.size: 60 has no unit; write 60s or 60ms", err
