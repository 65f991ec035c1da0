"""A minimal Confluent schema-registry client for Avro in Confluent wire format."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import fastavro

from monitor.errors import SchemaRegistryError


class UnknownSchemaError(SchemaRegistryError):
    """The registry answered 404 for a schema id: the message cannot be decoded."""


class SchemaRegistry:
    """A minimal Confluent schema-registry client: ``GET {url}/schemas/ids/{id}``, parsed
    with fastavro and cached for the life of the process (ids are immutable). Unknown ids
    are remembered for ``negative_ttl_s`` so a flood of bad messages does not hammer the
    registry."""

    def __init__(self, url: str, timeout_s: float = 5.0, attempts: int = 3,
                 negative_ttl_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s, self.attempts, self.negative_ttl_s = timeout_s, attempts, negative_ttl_s
        self._cache: dict[int, Any] = {}
        self._unknown: dict[int, float] = {}

    def schema(self, schema_id: int) -> Any:
        s = self._cache.get(schema_id)
        if s is not None:
            return s
        t = self._unknown.get(schema_id)
        if t is not None and time.monotonic() - t < self.negative_ttl_s:
            raise UnknownSchemaError(f"schema id {schema_id} is unknown to the registry")
        url = f"{self.url}/schemas/ids/{schema_id}"
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as r:
                    body = json.loads(r.read())
                s = fastavro.parse_schema(json.loads(body["schema"]))
                self._cache[schema_id] = s
                return s
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    self._unknown[schema_id] = time.monotonic()
                    raise UnknownSchemaError(
                        f"schema id {schema_id} is unknown to the registry") from None
                last = e
            except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
                last = e
            time.sleep(0.2 * (attempt + 1))
        raise SchemaRegistryError(f"schema registry {self.url} failed for id {schema_id} "
                                  f"after {self.attempts} attempts: {last}")
