"""The wheel is what users install: it carries the JSON Schemas as package data, and a
config validates with it in a fresh virtual environment, away from the source tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_carries_the_schemas_and_validates_a_config_outside_the_tree(tmp_path):
    src = tmp_path / "src"  # a copy: the build leaves build/ and *.egg-info behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")
    for name in ("monitor", "kernels", "schemas"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(dist), str(src)], check=True,
                   capture_output=True, timeout=300)
    wheel = next(dist.glob("streamdrift-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for schema in (ROOT / "schemas").iterdir():
        assert f"monitor/schemas/{schema.name}" in names
    assert any(n.endswith("LICENSE") for n in names)

    venv = tmp_path / "venv"  # fresh; its dependencies come from this environment
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path("
                                "'purelib'))"], capture_output=True, text=True,
                               check=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "uv", "pip", "install", "-q", "--no-deps",
                    "--python", str(py), str(wheel)], check=True, timeout=300)
    (site / "zz_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "monitor.yaml").write_text(
        "monitor: m\nkafka: {bootstrap: 'k:9092'}\nstream: {topic: t}\n"
        "features: {numeric: [x]}\nwindows: {size: 1m}\nreference: {profile: r.profile}\n"
        "checks: {numeric: {ks_floor: -1}}\n")
    code = ("import monitor, monitor.config as C\n"
            "print(monitor.__file__)\n"
            "try:\n    C.load('monitor.yaml', env={})\n"
            "except C.ConfigError as e:\n    print('ERROR', e)\n")
    r = subprocess.run([str(py), "-c", code], cwd=outside, capture_output=True, text=True,
                       timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    where, message = r.stdout.splitlines()[:2]
    assert where.startswith(str(site))  # the installed copy, not the source tree
    assert message.startswith("ERROR checks.numeric.ks_floor")
