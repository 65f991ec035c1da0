"""A fatal signal in a ``streamdrift`` process prints every thread's Python stack.

CI lost a monitor to a C-level abort inside confluent-kafka with one line of output; with
faulthandler on, the log names the thread and the Python line that was running (that is how
tests/faults/test_client_callbacks.py's bug was found). The stage-1 child processes are
spawned, so they get it through ``PYTHONFAULTHANDLER``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from tests.e2e_harness import ROOT

SCRIPT = textwrap.dedent("""
    import os, signal, subprocess, sys
    from monitor.cli import main

    main([])  # no command: prints the help, having set up the process
    child = subprocess.run([sys.executable, "-c",
                            "import faulthandler; print(faulthandler.is_enabled())"],
                           capture_output=True, text=True)
    print("child", child.stdout.strip(), flush=True)

    def where_it_happened():
        os.kill(os.getpid(), signal.SIGABRT)

    where_it_happened()
""")


def test_an_abort_prints_the_python_stack_of_the_process_and_its_children_are_covered():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == -signal.SIGABRT, (out.returncode, out.stderr[-2000:])
    assert "child True" in out.stdout
    assert "Fatal Python error: Aborted" in out.stderr
    assert "in where_it_happened" in out.stderr, out.stderr[-2000:]
