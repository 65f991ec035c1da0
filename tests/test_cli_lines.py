"""A bad command line is one clear line on stderr, never a traceback or a usage dump."""

from __future__ import annotations

import pytest

from monitor.cli import main
from tests.e2e_harness import config_dict, write_config

BAD = [
    ["alerts"],                                                   # no action
    ["alerts", "list"],                                           # no config
    ["alerts", "silence", "-c", "x.yaml"],                        # no --for / --reason
    ["report", "-o", "r.html", "--from", "yesterday", "--input", "x.jsonl"],
    ["report", "-o", "r.html"],                                   # no source
    ["no-such-command"],
]


@pytest.mark.parametrize("argv", BAD, ids=lambda a: " ".join(a))
def test_bad_command_line_is_one_line(argv, capsys):
    with pytest.raises(SystemExit) if argv[0] != "report" else _returns():
        rc = main(argv)
        assert rc == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith("streamdrift")


def test_alerts_silence_refuses_to_silence_everything(tmp_path, capsys):
    cfg = write_config(tmp_path, config_dict(tmp_path, "127.0.0.1:1", "t"))
    assert main(["alerts", "silence", "-c", str(cfg), "--for", "1h", "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert "refusing to silence everything" in err and len(err.strip().splitlines()) == 1


class _returns:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
