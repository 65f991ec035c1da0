"""A minimal Confluent schema-registry client for Avro in Confluent wire format."""

from __future__ import annotations

import json
import re
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
                 negative_ttl_s: float = 60.0, headers: dict[str, str] | None = None,
                 ssl_context: Any = None) -> None:
        self.url = url.rstrip("/")
        self.headers = dict(headers or {})  # auth (monitor.config.registry_options): secret
        self.ssl_context = ssl_context
        self.shown_url = re.sub(r"//[^/@]*@", "//", self.url)  # what errors may name
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
                req = urllib.request.Request(url, headers=self.headers)
                with urllib.request.urlopen(req, timeout=self.timeout_s,
                                            context=self.ssl_context) as r:
                    body = json.loads(r.read())
                s = fastavro.parse_schema(json.loads(body["schema"]))
                self._cache[schema_id] = s
                return s
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    self._unknown[schema_id] = time.monotonic()
                    raise UnknownSchemaError(
                        f"schema id {schema_id} is unknown to the registry") from None
                if e.code in (401, 403):
                    raise SchemaRegistryError(
                        f"stream.schema_registry: the registry {self.shown_url} refused the "
                        f"credentials (HTTP {e.code}): check username / password_env or "
                        "token_env") from None
                last = e
            except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
                last = e
            time.sleep(0.2 * (attempt + 1))
        raise SchemaRegistryError(f"schema registry {self.shown_url} failed for id {schema_id} "
                                  f"after {self.attempts} attempts: {last}")
