"""Hygiene that runs with the tests (``make test``): ruff, mypy (strict where
pyproject's ``[tool.mypy]`` says), and numba's options in one place."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
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


#: kernel modules mypy may leave out, each with its reason (none may be added silently)
NOT_STRICT_YET: dict[str, str] = {}


def test_mypy_is_strict_on_every_kernel_module_and_the_records():
    """pyproject's [tool.mypy] checks monitor/records.py and all of kernels/, strict; the
    only modules left out are the ones NOT_STRICT_YET names."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert conf["strict"] is True and "ignore_errors" not in conf
    assert set(conf["files"]) == {"monitor/records.py", "kernels"}
    left_out = {str(p.relative_to(ROOT)) for p in (ROOT / "kernels").glob("*.py")
                if any(re.search(x, str(p.relative_to(ROOT))) for x in conf.get("exclude", []))}
    assert left_out <= set(NOT_STRICT_YET), left_out - set(NOT_STRICT_YET)


def test_numba_options_live_in_kernels_jit_only():
    """Every kernel compiles through kernels/jit.py (nogil, cache): no other module calls
    numba's njit / jit itself."""
    pattern = re.compile(r"\b(nb|numba)\.(njit|jit)\b|from numba import .*\bn?jit\b")
    offenders = [str(p.relative_to(ROOT)) for d in ("kernels", "monitor")
                 for p in (ROOT / d).rglob("*.py")
                 if p.name != "jit.py" and pattern.search(p.read_text())]
    assert offenders == []


MAX_LINES = 400
#: modules allowed over MAX_LINES, each with its reason (only while its owner's split is in
#: flight; drop the entry once the file is under the limit)
OVER_LIMIT: dict[str, str] = {}


def test_no_module_over_400_lines():
    """Small files (~400 lines): a module of monitor/ or kernels/ that grows past the limit
    is split by concern, not let grow."""
    over = {str(p.relative_to(ROOT)): n for d in ("monitor", "kernels")
            for p in sorted((ROOT / d).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    unexcused = {k: n for k, n in over.items() if k not in OVER_LIMIT}
    assert not unexcused, f"modules over {MAX_LINES} lines: {unexcused}; split them by concern"


def test_bench_never_imports_tests():
    """bench/ measures the product: what it shares with the tests (the workload generator)
    lives in monitor/dev/, so a bench never imports tests/."""
    pattern = re.compile(r"^\s*(from tests\b|import tests\b)", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "bench").rglob("*.py"))
                 if pattern.search(p.read_text())]
    assert offenders == []


def _module_imports() -> dict[str, set[str]]:
    """monitor/ and kernels/ module -> the modules of monitor/ and kernels/ it imports
    anywhere in its body (function-level imports too: a cycle is a cycle however late)."""
    import ast

    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for d in ("monitor", "kernels") for p in (ROOT / d).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                       [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                       if isinstance(node, ast.ImportFrom) and not node.level else [])
            deps |= {t for t in targets if t in files and t != name}
        graph[name] = deps
    return graph


def test_no_import_cycles():
    """Imports go one way (cli -> pipeline -> stages -> stage2 -> stage1 -> kernels): no
    module of monitor/ or kernels/ reaches itself through its imports."""
    graph = _module_imports()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []
