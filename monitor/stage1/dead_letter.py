"""What a dead-letter copy of a bad message keeps (``dead_letter.payload`` in the config).

Bad messages are where personal data ends up: a producer bug that breaks the JSON still
carries the customer's fields. :func:`protect` turns one bad message's key, value and error
text into what goes to the dead-letter topic:

- ``raw``: the bytes as they came, except that ``drop_fields`` are removed from a value that
  is a JSON object. A value that is not one (the usual reason it is bad) cannot be cleaned
  field by field, so with ``drop_fields`` set it is replaced by its hash instead.
- ``hash``: ``sha256:<hex>`` of the value and of the key, so a copy can still be matched
  with the producer's own record, and the decoder's error text (which may quote the
  payload) is dropped. A short value (an id, a number) can be guessed from its hash: use
  ``drop`` for topics that carry such values alone.
- ``drop``: no value, no key; the headers still say why, where from, and how long it was.

A header ``streamdrift.payload`` says which of these a copy holds.

>>> protect(b'{"email": "a@b.c", "x": 1}', b"k1", "boom", "raw", ("email",))
(b'{"x":1}', b'k1', 'boom', 'raw-dropped-fields')
>>> protect(b'{"email": "a@b', None, "boom", "raw", ("email",))[::3]
(b'sha256:8e929842be1e44915c27ed10ef726c9e27be8b54554850a91c9abda6ca5a7776', 'hash-unparseable')
>>> protect(b"secret", b"id-7", "boom", "drop", ())
(None, None, '', 'drop')
"""

from __future__ import annotations

import hashlib

import orjson

MODES = ("raw", "hash", "drop")


def digest(data: bytes | None) -> bytes | None:
    """``sha256:<hex>`` of ``data`` (None stays None)."""
    return None if data is None else b"sha256:" + hashlib.sha256(data).hexdigest().encode()


def protect(value: bytes | None, key: bytes | None, error: str, mode: str,
            drop_fields: tuple[str, ...] = ()) -> tuple[bytes | None, bytes | None, str, str]:
    """``(value, key, error_text, payload_kind)`` for a dead-letter copy; see the module
    docstring. Pure: no I/O, never raises on any bytes."""
    if mode == "drop":
        return None, None, "", "drop"
    if mode == "hash":
        return digest(value), digest(key), "", "hash"
    if not drop_fields or value is None:
        return value, key, error, "raw"
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        return digest(value), digest(key), "", "hash-unparseable"
    kept = {k: v for k, v in doc.items() if k not in drop_fields}
    if len(kept) == len(doc):
        return value, key, error, "raw"
    return orjson.dumps(kept), key, error, "raw-dropped-fields"


def dead_letter_copy(cfg_dead_letter, value: bytes | None, key: bytes | None,
                     headers: list[tuple[str, bytes]]
                     ) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """The copy stage 1 produces: :func:`protect` applied with the config's
    ``dead_letter`` section; ``headers`` (reason, error, source) get the error replaced
    and ``streamdrift.payload`` / ``streamdrift.size`` added."""
    error = next((v.decode(errors="replace") for k, v in headers if k == "streamdrift.error"),
                 "")
    v, k, err, kind = protect(value, key, error, cfg_dead_letter.payload,
                              cfg_dead_letter.drop_fields)
    out = [(hk, hv) for hk, hv in headers if hk != "streamdrift.error"]
    if err:
        out.append(("streamdrift.error", err.encode()))
    out += [("streamdrift.payload", kind.encode()),
            ("streamdrift.size", str(len(value or b"")).encode())]
    return v, k, out
