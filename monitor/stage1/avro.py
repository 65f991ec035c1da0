"""Avro in Confluent wire format -> the decoder's column contract.

A message is magic byte 0, a 4-byte big-endian schema id, then the Avro body. The writer
schema is fetched from the registry once per id (:class:`SchemaRegistry` caches it); each body
is read by fastavro into a record, and the records go through
:meth:`~monitor.stage1.decode.Decoder.decode_records`, so fields, states and bad messages
follow the same rules as JSON. An unknown id or a body that does not match its schema makes
the message malformed; an unreachable registry raises
:class:`~monitor.errors.SchemaRegistryError` (not the message's fault: stage 1 retries).
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
import numpy as np

from monitor.config import registry_options
from monitor.errors import DecodeError
from monitor.stage1.assemble import MALFORMED
from monitor.stage1.schema_registry import SchemaRegistry, UnknownSchemaError
from monitor.stage1.decoded import BadMessage


def decode_avro(dec: Any, values: list[bytes | None], offsets: np.ndarray,
                timestamps_ms: np.ndarray) -> Any:
    """``dec.decode_avro``: one batch of wire-format values -> :class:`Decoded`."""
    if dec._registry is None:
        if not dec.cfg.stream.schema_registry_url:
            raise DecodeError("Avro needs stream.schema_registry_url in the config")
        dec._registry = SchemaRegistry(dec.cfg.stream.schema_registry_url,
                                       **registry_options(dec.cfg))
    offsets = np.asarray(offsets, np.int64)
    records = [_record(dec, i, int(offsets[i]), v) for i, v in enumerate(values)]
    return dec.decode_records(records, offsets, timestamps_ms)


def _record(dec: Any, i: int, offset: int, v: bytes | None) -> Any:

    if v is None:
        return BadMessage(i, offset, MALFORMED, "null value (tombstone)")
    if len(v) < 5 or v[0] != 0:
        return BadMessage(i, offset, MALFORMED, "not Confluent wire format (magic byte 0 "
                          "+ 4-byte schema id + Avro body)")
    sid = int.from_bytes(v[1:5], "big")
    try:
        schema = dec._registry.schema(sid)
    except UnknownSchemaError as e:
        return BadMessage(i, offset, MALFORMED, str(e))
    try:
        return fastavro.schemaless_reader(io.BytesIO(v[5:]), schema, None)
    except Exception as e:  # fastavro raises many types on a corrupt body
        return BadMessage(i, offset, MALFORMED, f"Avro body does not match schema id "
                          f"{sid}: {type(e).__name__}: {str(e)[:200]}")
