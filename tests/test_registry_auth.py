"""Schema-registry auth: basic and bearer from env or file, a private CA, never echoed.

No real Confluent Schema Registry runs here (it is not on Maven Central; it ships from
Confluent's own repository), so the tests use a minimal Confluent-compatible HTTP server on
127.0.0.1 that implements ``GET /schemas/ids/{id}`` and ``GET /subjects`` and checks the
``Authorization`` header the way the real one does (401 without or with wrong credentials).
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fastavro
import pytest

from monitor.check import registry_problem
from monitor.config import from_dict, registry_options
from monitor.errors import ConfigError, SchemaRegistryError
from monitor.stage1.schema_registry import SchemaRegistry

SCHEMA = {"type": "record", "name": "E", "fields": [{"name": "x", "type": "double"}]}
TOKEN = "tok-3f9a1c0d9e"  # the test's secrets: must never appear in an error
PASSWORD = "pw-7c1e2b"


def _server(expected_auth: str, tls: ssl.SSLContext | None = None):
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != expected_auth:
                return self._send(401, {"error_code": 401, "message": "Unauthorized"})
            if self.path == "/subjects":
                return self._send(200, ["events-value"])
            if self.path == "/schemas/ids/7":
                return self._send(200, {"schema": json.dumps(SCHEMA)})
            return self._send(404, {"error_code": 40403, "message": "Schema not found"})

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    scheme = "https" if tls else "http"
    return srv, f"{scheme}://127.0.0.1:{srv.server_address[1]}", seen


def _cfg(url: str, registry: dict, tmp_path):
    return from_dict({"monitor": "m", "kafka": {"bootstrap": "k:9092"},
                      "stream": {"topic": "t", "format": "avro", "schema_registry_url": url,
                                 "schema_registry": registry},
                      "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
                      "reference": {"profile": "/r"}}, base_dir=tmp_path)


def test_basic_auth_from_env(tmp_path, monkeypatch):
    srv, url, seen = _server("Basic " + base64.b64encode(f"sd:{PASSWORD}".encode()).decode())
    try:
        monkeypatch.setenv("SD_REG_PW", PASSWORD)
        cfg = _cfg(url, {"username": "sd", "password_env": "SD_REG_PW"}, tmp_path)
        reg = SchemaRegistry(url, **registry_options(cfg))
        assert fastavro.schemaless_writer is not None and reg.schema(7)["name"] == "E"
        assert registry_problem(cfg) is None
        monkeypatch.setenv("SD_REG_PW", "wrong")
        with pytest.raises(SchemaRegistryError, match="refused the credentials") as e:
            SchemaRegistry(url, **registry_options(cfg), attempts=1).schema(7)
        assert "wrong" not in str(e.value) and PASSWORD not in str(e.value)
        assert "refused the credentials (HTTP 401)" in registry_problem(cfg)
    finally:
        srv.shutdown()


def test_bearer_token_from_file_over_https_with_a_private_ca(tmp_path):
    from monitor.dev.secure_kafka import make_pki

    pki = make_pki(tmp_path / "pki", "unused-key-pw")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(pki.broker_keystore))
    srv, url, seen = _server(f"Bearer {TOKEN}", tls)
    try:
        (tmp_path / "token").write_text(TOKEN + "\n")
        cfg = _cfg(url, {"token_file": str(tmp_path / "token"), "ca_file": str(pki.ca)},
                   tmp_path)
        assert SchemaRegistry(url, **registry_options(cfg)).schema(7)["name"] == "E"
        assert seen[-1] == f"Bearer {TOKEN}"
        other = _cfg(url, {"token_file": str(tmp_path / "token"),
                           "ca_file": str(pki.other_ca)}, tmp_path)
        line = registry_problem(other)
        assert line.startswith("stream.schema_registry.ca_file:") and TOKEN not in line
    finally:
        srv.shutdown()


def test_credentials_in_the_url_are_refused_and_never_echoed(tmp_path):
    with pytest.raises(ConfigError) as e:
        from_dict({"monitor": "m", "kafka": {"bootstrap": "k:9092"},
                   "stream": {"topic": "t", "format": "avro",
                              "schema_registry_url": f"https://sd:{PASSWORD}@reg:8081"},
                   "features": {"numeric": ["x"]}, "windows": {"size": "1m"},
                   "reference": {"profile": "/r"}}, env={})
    assert e.value.path == "stream.schema_registry_url" and PASSWORD not in str(e.value)
    reg = SchemaRegistry(f"http://sd:{PASSWORD}@127.0.0.1:9", attempts=1, timeout_s=0.5)
    with pytest.raises(SchemaRegistryError) as e2:
        reg.schema(1)
    assert PASSWORD not in str(e2.value)


def test_basic_and_bearer_together_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        _cfg("https://reg:8081", {"username": "u", "password_env": "A", "token_env": "B"},
             tmp_path)
