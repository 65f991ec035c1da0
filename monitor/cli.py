"""The ``streamdrift`` command."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import sys

from monitor import __version__
from monitor.errors import StreamdriftError

HELP = """\
streamdrift watches the Kafka topics of a machine-learning model and says, window by window,
whether the data drifted from the reference profile, whether it is healthy, and whether the
model treats groups fairly; it alerts on-call in Slack and publishes retraining triggers.

Typical use:
  streamdrift profile build -c monitor.yaml --input train.parquet -o ref.profile
  streamdrift run -c monitor.yaml
  streamdrift replay -c monitor.yaml --input events.parquet --reports out.jsonl
  streamdrift report --input out.jsonl -o drift.html     (or -c monitor.yaml: the topic)

Try it locally (needs Java 17+ and Maven):
  streamdrift demo          a local Kafka, synthetic traffic with drift, the monitor watching
  streamdrift dev-kafka     just the local Kafka broker
"""


def _config(path: str, kafka: bool = True):
    """The config; ``kafka=False`` for commands that read files only (no Kafka settings
    needed)."""
    from monitor.config import load

    return load(path, kafka=kafka)


def cmd_run(a: argparse.Namespace) -> int:
    from monitor.pipeline import run

    return run(_config(a.config), stage=a.stage, loglevel=a.log_level,
               source_processes=a.source_processes)


def cmd_check(a: argparse.Namespace) -> int:
    from monitor.check import check

    return 1 if check(_config(a.config), stage=a.stage, create_topics=a.create_topics) else 0


def cmd_replay(a: argparse.Namespace) -> int:
    from monitor.pipeline import load_profile
    from monitor.files import read_table
    from monitor.replay import ReplaySummary, check_input, replay, why_nothing, write_reports

    cfg = _config(a.config, kafka=False)
    profile = load_profile(cfg)
    table = read_table(a.input)
    check_input(cfg, table)
    summary = ReplaySummary()
    n = write_reports(replay(cfg, profile, table, summary=summary), a.reports)
    if n == 0:
        raise StreamdriftError(why_nothing(summary))
    print(f"{n} window reports written to {a.reports}")
    if a.labels:
        import orjson

        from monitor.replay_labels import performance_reports

        perf = performance_reports(cfg, profile, read_table(a.input), read_table(a.labels))
        out = a.performance or f"{a.reports}.performance.jsonl"
        with open(out, "wb") as f:
            f.writelines(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
                         for r in perf)
        print(f"{len(perf)} performance reports written to {out}")
    return 0


def cmd_profile_build(a: argparse.Namespace) -> int:
    from monitor.profile import build_profile, save_profile

    cfg = _config(a.config, kafka=False)
    profile = build_profile(cfg, a.input, max_rows=a.max_rows)
    save_profile(profile, a.output)
    print(f"profile {profile.profile_id} written to {a.output}")
    if cfg.slices is not None:  # the reference per slice (monitor/stage2/slices.py)
        from monitor.files import read_table
        from monitor.stage2.slices import build_reference, reference_path, write_reference

        table = read_table(a.input)
        table = table.slice(0, a.max_rows) if a.max_rows is not None else table
        write_reference(a.output, profile, build_reference(cfg, profile, table))
        print(f"reference per slice written to {reference_path(a.output)}")
    if a.labels:
        from monitor.files import read_table
        from monitor.replay_labels import reference_path, reference_sketch, slicing

        sk = reference_sketch(cfg, profile, read_table(a.input), read_table(a.labels))
        reference_path(a.output).write_bytes(sk.to_bytes())
        n = sk.result(slicing(cfg, profile)[0].key_cells(0))["labelled"]
        print(f"reference performance ({n} labelled rows) written to "
              f"{reference_path(a.output)}")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from monitor.web.report import parse_time, read_inputs, read_topic, write_report

    start, end = parse_time(a.start, "--from"), parse_time(a.end, "--to")
    if a.input:
        reports = read_inputs(a.input)
    elif a.config:
        from monitor.config import kafka_client_config

        cfg = _config(a.config)
        reports = read_topic(kafka_client_config(cfg), cfg.topics.reports)
    else:
        raise StreamdriftError("report: give --input reports.jsonl, or -c monitor.yaml to "
                               "read the reports topic")
    n = write_report(reports, a.output, start, end, a.monitor)
    print(f"{n} windows written to {a.output}")
    return 0


def cmd_dev_kafka(a: argparse.Namespace) -> int:
    if a.secure:
        from monitor.dev.secure_kafka import main as secure_main

        return secure_main([])
    from monitor.dev.kafka import main

    return main(["--port", str(a.port)] if a.port else [])


def cmd_demo(a: argparse.Namespace) -> int:
    from monitor.dev.demo import main

    return main(a)


def cmd_synth(a: argparse.Namespace) -> int:
    from monitor.dev.demo import synth_main

    return synth_main(a)


def silence_store(cfg):
    """The shared silence store of the deployment that ``cfg`` describes (its Kafka)."""
    from monitor.config import kafka_client_config
    from monitor.stage2.silences import SilenceStore

    return SilenceStore(kafka_client_config(cfg), cfg.topics.silences)


def cmd_silence(a: argparse.Namespace) -> int:
    import time

    from monitor.config import parse_duration
    from monitor.records import Silence

    cfg = _config(a.config)
    store = silence_store(cfg)
    now = int(time.time() * 1000)
    if a.silence_command == "add":
        until = now + parse_duration(a.duration) if a.duration else None
        sid = store.add(Silence(reason=a.reason, feature=a.feature, check=a.check,
                                family=a.family, monitor=cfg.monitor, until_ms=until,
                                created_by=a.by))
        print(f"silenced {a.family}/{a.check}/{a.feature} ({sid})"
              + (f" for {a.duration}" if a.duration else " until removed"))
    elif a.silence_command == "remove":
        n = store.remove(a.id, **({} if a.id else
                                  {"feature": a.feature, "check": a.check, "family": a.family}))
        print(f"{n} silence(s) removed")
    else:
        store.prune(now)
        for sid, s in store.list(now).items():
            left = "until removed" if s.until_ms is None else \
                f"{(s.until_ms - now) / 60000:.0f} min left"
            print(f"{sid}  {s.family}/{s.check}/{s.feature}  {left}  — {s.reason}")
    return 0


def cmd_alerts(a: argparse.Namespace) -> int:
    from monitor.config import kafka_client_config
    from monitor.web import alerts_cli

    cfg = _config(a.config)
    store = silence_store(cfg)  # the silences every stage-2 worker follows (Kafka)
    if a.alerts_command == "list":
        return alerts_cli.list_alerts(cfg, kafka_client_config(cfg), store, as_json=a.json,
                                      show_all=a.all, last=a.last)
    if a.alerts_command == "silence":
        return alerts_cli.silence(cfg, store, a)
    return alerts_cli.unsilence(cfg, store, a)


class _Parser(argparse.ArgumentParser):
    """A bad command line is one line on stderr (what is wrong, where to look), exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _processes(text: str) -> int:
    n = int(text) if text.strip().isdigit() else 0
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes from 1 to 64 "
                                         "(e.g. the worker's cores: --source-processes 2)")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="streamdrift", description=HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"streamdrift {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run the monitor against Kafka (all stages in one process)")
    r.add_argument("-c", "--config", required=True, help="the monitor's YAML config")
    r.add_argument("--stage", choices=["all", "source", "aggregate", "sinks"], default="all",
                   help="source: consume + sketch; aggregate: merge windows, report, alert; "
                        "sinks: deliver alerts to Slack and retraining triggers")
    r.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"])
    r.add_argument("--source-processes", type=_processes, default=None, metavar="N",
                   help="run stage 1 in N processes (consumer-group members; one per core); "
                        "overrides the config's stage1.processes")
    r.set_defaults(func=cmd_run)

    ck = sub.add_parser("check", help="before a deployment: connection, credentials, TLS, "
                        "ACLs, topic policies and the schema registry, one line per finding")
    ck.add_argument("-c", "--config", required=True)
    ck.add_argument("--stage", choices=["all", "source", "aggregate", "sinks"], default="all")
    ck.add_argument("--create-topics", action="store_true",
                    help="create the monitor's missing topics with their policies (as an admin)")
    ck.set_defaults(func=cmd_check)

    rp = sub.add_parser("replay", help="the same windows and statistics over a file, no Kafka")
    rp.add_argument("-c", "--config", required=True)
    rp.add_argument("--input", required=True, help="events as .parquet, .csv or .jsonl")
    rp.add_argument("--reports", required=True, help="where to write the reports (JSON lines)")
    rp.add_argument("--labels", help="delayed labels (.parquet, .csv or .jsonl; see labels: in "
                    "the config): performance reports per window and slice")
    rp.add_argument("--performance", help="where to write the performance reports (default: "
                    "<reports>.performance.jsonl)")
    rp.set_defaults(func=cmd_replay)

    rr = sub.add_parser("report", help="one self-contained HTML drift report for a window range")
    rr.add_argument("-c", "--config", default=None,
                    help="read the reports topic of this monitor's deployment")
    rr.add_argument("--input", action="append", default=None,
                    help="or read reports from a JSON-lines file (replay --reports writes "
                         "one; its .performance.jsonl beside it is read too); repeatable")
    rr.add_argument("-o", "--output", required=True, help="the HTML file to write")
    rr.add_argument("--from", dest="start", default=None,
                    help="first window start (ISO 8601 UTC or epoch ms; default: the first)")
    rr.add_argument("--to", dest="end", default=None,
                    help="windows starting before this (default: all)")
    rr.add_argument("--monitor", default=None, help="only this monitor's windows")
    rr.set_defaults(func=cmd_report)

    pr = sub.add_parser("profile", help="reference profiles")
    prs = pr.add_subparsers(dest="profile_command", metavar="ACTION")
    pb = prs.add_parser("build", help="build a reference profile from training data")
    pb.add_argument("-c", "--config", required=True)
    pb.add_argument("--input", required=True, help="training data as .parquet or .csv")
    pb.add_argument("-o", "--output", required=True, help="the profile file to write")
    pb.add_argument("--max-rows", type=int, default=None, help="use at most this many rows")
    pb.add_argument("--labels", help="labels of the input's predictions: the reference "
                    "performance, written beside the profile (<output>.performance)")
    pb.set_defaults(func=cmd_profile_build)

    si = sub.add_parser("silence", help="hold back alert notifications (with an expiry); "
                        "stored on the deployment's Kafka, shared by every worker")
    sis = si.add_subparsers(dest="silence_command", metavar="ACTION", required=True)
    for name, helptext in (("add", "silence matching alerts"), ("remove", "lift a silence"),
                           ("list", "the active silences")):
        x = sis.add_parser(name, help=helptext)
        x.add_argument("-c", "--config", required=True)
        if name == "remove":
            x.add_argument("--id", default=None, help="the silence's id (from `list`)")
        if name != "list":
            x.add_argument("--feature", default="*", help="feature pattern (default *)")
            x.add_argument("--check", default="*", help="check pattern, e.g. ks (default *)")
            x.add_argument("--family", default="*", help="family pattern (default *)")
        if name == "add":
            x.add_argument("--for", dest="duration", default=None,
                           help='how long, e.g. "2h" (default: until removed)')
            x.add_argument("--reason", required=True, help="why: shown to whoever looks")
            x.add_argument("--by", default="", help="who")
        x.set_defaults(func=cmd_silence)

    al = sub.add_parser("alerts", help="open alerts of a running deployment; silence them")
    als = al.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    x = als.add_parser("list", help="the open alerts (fired, not resolved) and the silences")
    x.add_argument("--all", action="store_true", help="also the recent notifications")
    x.add_argument("--last", type=int, default=10_000,
                   help="read at most this many notifications per partition (default 10000)")
    for name, helptext in (("silence", "hold back notifications of matching alerts"),
                           ("unsilence", "lift the silences that match")):
        y = als.add_parser(name, help=helptext)
        y.add_argument("key", nargs="?", default=None,
                       help="an alert key as `alerts list` prints it (monitor/check/feature, "
                            "patterns allowed), or use the options")
        y.add_argument("--feature", default="*", help="feature pattern (default *)")
        y.add_argument("--check", default="*", help="check pattern, e.g. ks (default *)")
        y.add_argument("--family", default="*", help="family pattern (default *)")
        if name == "silence":
            y.add_argument("--for", dest="duration", required=True,
                           help='how long, e.g. "2h" or "1d"')
            y.add_argument("--reason", required=True, help="why: shown to whoever looks")
            y.add_argument("--by", default="", help="who")
    for y in (x, *[als.choices[n] for n in ("silence", "unsilence")]):
        y.add_argument("-c", "--config", required=True, help="the monitor's YAML config")
        y.add_argument("--json", action="store_true", help="JSON for scripts")
        y.set_defaults(func=cmd_alerts)

    dk = sub.add_parser("dev-kafka", help="run a local Apache Kafka broker on 127.0.0.1")
    dk.add_argument("--port", type=int, default=None)
    dk.add_argument("--secure", action="store_true",
                    help="SASL_SSL + SCRAM-SHA-512 + ACLs instead (prints a kafka: section)")
    dk.set_defaults(func=cmd_dev_kafka)

    d = sub.add_parser("demo", help="local Kafka + synthetic traffic with drift + the monitor")
    d.add_argument("--out", default="demo-out", help="where reports and logs go")
    d.add_argument("--windows", type=int, default=12, help="event-time windows to stream")
    d.add_argument("--port", type=int, default=9108,
                   help="status page / metrics port on 127.0.0.1 (another if taken)")
    d.add_argument("--no-serve", dest="serve", action="store_false",
                   help="exit after the windows instead of serving the status page")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("synth", help="produce synthetic traffic for the example model")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--events", type=int, default=100_000)
    s.add_argument("--rate", type=float, default=2000.0, help="events per second")
    s.add_argument("--live", action="store_true", help="event times follow the wall clock")
    s.set_defaults(func=cmd_synth)
    return p


def _enable_faulthandler() -> None:
    """A fatal signal (a C extension's abort or segfault) prints every thread's Python stack
    to stderr, so the log says where it happened; in the stage-1 child processes too
    (``PYTHONFAULTHANDLER``: they are spawned, not forked). Left alone when already on
    (pytest) or when stderr is no file (called in-process with captured output)."""
    if faulthandler.is_enabled():
        return
    try:
        faulthandler.enable()
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is an OSError
        return
    os.environ.setdefault("PYTHONFAULTHANDLER", "1")


def main(argv: list[str] | None = None) -> int:
    _enable_faulthandler()
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        return 0 if a.command is None else 2
    level = getattr(a, "log_level", "info").upper().replace("WARNING", "WARN").replace("WARN", "WARNING")
    logging.basicConfig(level=getattr(logging, level, logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(a.func(a) or 0)
    except StreamdriftError as e:
        print(f"streamdrift: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
