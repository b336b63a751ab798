"""--format, --regex, --delimiter and --import-option on the command line."""

from __future__ import annotations

import json

import pytest
import typer
from test_cli import cli

from raceway_core.formats import ImportOptions, names
from raceway_tui.cli import import_options

TWO = "start\na {\"a\":1}\nrecv\nb {\"b\":1,\"a\":1}\n"


def test_import_options_helper():
    assert import_options() is None
    assert import_options("zipkin", None, "", ["access_regex=x=y", "lock_regex="]) == ImportOptions(
        format="zipkin", delimiter="", extra={"access_regex": "x=y", "lock_regex": ""})
    for bad in (dict(fmt="nope"), dict(settings=["no-equals"])):
        with pytest.raises(typer.Exit):
            import_options(**bad)


def test_help_lists_every_format():
    text = " ".join(cli("load", "--help").stdout.split())
    assert all(n in text for n in names())


def test_regex_and_format_options(tmp_path):
    log = tmp_path / "run.txt"
    log.write_text('1 x {"x":1} go\n2 x {"x":2} stop\n')
    # --regex alone selects the ShiViz importer; the extra named group n becomes data
    regex = r"(?<n>\d) (?<host>\w) (?<clock>{.*}) (?<event>.*)"
    r = cli("sql", log, "--regex", regex, "--json", "-q",
            "SELECT id, raw->>'$.kind.Custom.name' AS name, raw->>'$.kind.Custom.data.n' AS n FROM events ORDER BY seq")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"id": "run:x:1", "name": "go", "n": "1"}, {"id": "run:x:2", "name": "stop", "n": "2"}]
    ok = tmp_path / "two.log"
    ok.write_text(TWO)
    r = cli("sql", ok, "--format", "shiviz", "--delimiter", "", "--json", "-q",
            "SELECT id, thread_id FROM events ORDER BY seq")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"id": "two:a:1", "thread_id": "a"}, {"id": "two:b:1", "thread_id": "b"}]
    r = cli("load", ok, "--format", "zipkin")
    assert r.returncode == 2 and "not a valid Zipkin JSON document" in r.stdout
    r = cli("load", ok, "--format", "nope")
    assert r.returncode == 2 and "unknown --format 'nope'" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
