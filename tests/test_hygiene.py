"""Hygiene that runs with the tests (``make test``): ruff, mypy (strict where
pyproject's ``[tool.mypy]`` says), and numba's options in one place."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_finds_nothing():
    r = _run("ruff", "check", "--output-format", "concise", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_passes():
    r = _run("mypy")
    assert r.returncode == 0, r.stdout + r.stderr


def test_numba_options_live_in_kernels_jit_only():
    """Every kernel compiles through kernels/jit.py (nogil, cache): no other module calls
    numba's njit / jit itself."""
    pattern = re.compile(r"\b(nb|numba)\.(njit|jit)\b|from numba import .*\bn?jit\b")
    offenders = [str(p.relative_to(ROOT)) for d in ("kernels", "monitor")
                 for p in (ROOT / d).rglob("*.py")
                 if p.name != "jit.py" and pattern.search(p.read_text())]
    assert offenders == []
