"""Stage 2 picks up its partials topic when the topic was not there at its group join.

aiokafka drops a subscribed topic it could not get metadata for, the group's assignment then
leaves it out (an empty assignment), and aiokafka looks again only at its periodic metadata
refresh, every five minutes by default. CI: the broker restarted while stage 2 subscribed,
and stage 2 sat idle for nine minutes while the process looked healthy. Stage 2 now
refreshes every ``kafka.session_timeout_ms`` (monitor/stage2/worker.py).

Here stage 2 starts before its partials topic exists (the other topics do) and must say that
it does not see it; stage 1 is then started, creates the topic and publishes.
Every window must be reported, exactly, within a bound made of the session timeout and a
fixed allowance for stage 1's start, well under aiokafka's five minutes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from monitor.dev.kafka import _die_with_parent
from monitor.dev.workload import Feed
from monitor.topics import wanted_topics
from tests.e2e_harness import ROOT
from tests.faults.harness import (
    AssignedReportReader,
    Monitor,
    assert_exact,
    closed_windows,
    end_ms,
    judge,
    scenario,
    setup,
)

# stage 2 alone, wired as monitor/pipeline.py wires it, without the preflight that would
# create the partials topic first
STAGE2 = textwrap.dedent("""
    import logging, sys
    from monitor.config import kafka_client_config, load
    from monitor.stage2.worker import FaustStage
    from monitor.stages import load_profile, make_stage2_app, make_stage2_runner
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load(sys.argv[1])
    runner = make_stage2_runner(cfg, load_profile(cfg), kafka_client_config(cfg))
    FaustStage(lambda: make_stage2_app(cfg, runner), "info",
               topics=(cfg.topics.partials,)).run()
""")


def _wait_text(path, needle: str, timeout_s: float, proc) -> None:
    deadline = time.monotonic() + timeout_s
    while needle not in path.read_text(errors="replace"):
        assert proc.poll() is None, path.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"no {needle!r} in {timeout_s}s: {path}"
        time.sleep(0.1)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_stage2_processes_a_partials_topic_that_appeared_after_its_group_join(tmp_path):
    from monitor.dev.kafka import DevKafka

    # a broker of its own that creates no topic on a metadata request (the session broker's
    # would create the partials topic for stage 2's first refresh, with default settings)
    broker = DevKafka(data_dir=tmp_path / "kafka", heap="384m")
    broker.auto_create_topics = False
    broker.start()
    try:
        _run(tmp_path, broker.bootstrap)
    finally:
        broker.stop()


def _run(tmp_path, kafka_bootstrap: str) -> None:
    s = setup(tmp_path, kafka_bootstrap, idle_timeout=600_000)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    others = [NewTopic(p.name, p.partitions, 1, config=p.config)
              for p in wanted_topics(s.cfg) if p.name != s.cfg.topics.partials]
    for f in admin.create_topics(others).values():
        f.result(30)
    log2 = tmp_path / "stage2.log"
    with open(log2, "ab") as out:
        stage2 = subprocess.Popen([sys.executable, "-c", STAGE2, str(s.path)], cwd=ROOT,
                                  stdout=out, stderr=subprocess.STDOUT,
                                  preexec_fn=_die_with_parent)
    mon = None
    try:
        _wait_text(log2, "[^Worker]: Ready", 180, stage2)
        # the situation of the CI failure: the group's assignment left the topic out ...
        text = log2.read_text(errors="replace")
        assert f"Ignoring missing topic: '{s.cfg.topics.partials}'" in text, text[-3000:]
        # ... and stage 2 says so while it lasts
        _wait_text(log2, f"does not see topic {s.cfg.topics.partials}", 60, stage2)
        mon = Monitor(s, tmp_path / "stage1.log", stage="source")  # creates the topic
        mon.wait_log("assigned partitions", 120)
        feed = Feed(kafka_bootstrap, s.topic, scenario(5, seed=16), garbage_every=0)
        feed.send(feed.n)
        produced = feed.produced()
        bound_s = 3 * s.cfg.kafka.session_timeout_ms / 1000 + 60
        reader = AssignedReportReader(kafka_bootstrap, s.cfg.topics.reports)
        try:
            reader.wait_for(closed_windows(produced), bound_s, procs=[mon],
                            before_ms=end_ms(produced))
            time.sleep(1)
            reader.poll(1)
        finally:
            reader.close()
        assert stage2.poll() is None, log2.read_text(errors="replace")[-3000:]
        verdict = judge(s, produced, reader, end_ms(produced))
        assert verdict.windows_expected == closed_windows(produced) == 4
        assert_exact(verdict)
    finally:
        if mon is not None:
            mon.stop()
        if stage2.poll() is None:
            stage2.terminate()
            try:
                stage2.wait(30)
            except subprocess.TimeoutExpired:
                stage2.kill()
                stage2.wait()
