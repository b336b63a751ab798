"""Data is never markup (issues 15.12, 16.1, 16.2): hostile strings in every field a pane or a
report shows are drawn literally, control characters visible, and nothing crashes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from test_causality_rules import Trace, acq, call, rel, sc

from raceway_core.store import Store
from raceway_tui.literal import literal, visible

# markup that crashes (MarkupError), markup that acts (a hyperlink, bold), an emoji code,
# a bracketed note Rich would swallow, and control characters that garble a terminal
MARKUP = ["[/]", "[link=http://evil.example/]L[/link]", "[bold red]B[/]", ":skull:", "[truncated gzip]"]
CONTROL = ["\x1b[31mRED", "line1\nline2", "tab\there", "cr\rhere", "bell\x07", "nl\u2028sep"]


def test_visible_shows_every_control_character_and_nothing_else_changes():
    assert visible("a\nb\rc\td") == "a␊b␍c␉d"
    assert visible("\x1b[31m") == "\\x1b[31m" and visible("\x00\x7f\x9b") == "\\x00\\x7f\\x9b"
    assert visible("x\u2028y\u202ez") == "x\\u2028y\\u202ez"
    for s in MARKUP + ["plain", "ünïcode ✓ 漢字", "\\n stays two characters"]:
        assert visible(s) == s
    assert visible("a\nb\x1b", multiline=True) == "a\nb\\x1b"
    assert visible(None) == "" and visible(12) == "12"
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in visible("".join(map(chr, range(0xA0)))))


def test_literal_is_plain_text_even_where_rich_reads_markup():
    from rich.console import Console

    console = Console(width=300, record=True, file=open("/dev/null", "w"), color_system="truecolor")
    for s in MARKUP:
        console.print(literal(s))
    text = console.export_text()
    assert all(s in text for s in MARKUP) and "💀" not in text
    assert "\x1b]8;" not in console.export_text(styles=True)  # no OSC 8 hyperlink


def hostile_trace() -> Trace:
    """Every field a pane shows, each with markup and a control character; two services so
    that Dependencies has a row, a lock, a race, an anomaly, HTTP, DB and an error."""
    t = Trace()
    var = "acct[/]:skull:\x1b[31m"
    loc_a, loc_b = "src/[link=http://evil.example/]a[/link].py:1", "src/b[truncated gzip]\t.py:2"
    th_a, th_b = "thread[/]A\x1b[2J", "thread[bold]B\r"
    svc_a, svc_b = "svc[/]front", "svc:skull:\nback"
    m = t.ev("m1", th_a, call("main[/]"), trace="T[/]x", svc=svc_a, dur=5_000_000)
    t.ev("w1", th_a, sc(var, "Write", loc_a, 1, "v[/]\x1b[0m"), trace="T[/]x", svc=svc_a)
    t.ev("w2", th_b, sc(var, "Write", loc_b, 1, 2), trace="T[/]x", svc=svc_a, parent=m)
    t.ev("h1", th_a, {"HttpRequest": {"method": "GET", "url": "/pay[/]?x=\x1b[31m\nHost: evil", "headers": {},
                                      "body": None}}, trace="T[/]x", svc=svc_a, dur=2_000_000)
    t.ev("h2", "srv[/]", {"HttpResponse": {"status": 503, "headers": {}, "body": "[/]", "duration_ms": 2}},
         trace="T[/]x", svc=svc_b, parent="h1", dur=2_000_000)
    t.ev("q1", "srv[/]", {"DatabaseQuery": {"query": "SELECT '[/]'\nFROM t\x1b[0m", "database": "db[/]",
                                            "duration_ms": 1}}, trace="T[/]x", svc=svc_b, dur=1_000_000)
    t.ev("x1", "srv[/]", {"Error": {"error_type": "Boom[/]", "message": "failed: [bold]\x1b[31mred\nnext",
                                    "stack_trace": []}}, trace="T[/]x", svc=svc_b)
    t.ev("l1", th_a, acq("lock[/]\x1b"), trace="T[/]x", svc=svc_a)
    t.ev("l2", th_a, rel("lock[/]\x1b"), trace="T[/]x", svc=svc_a)
    for i, ms in enumerate([10, 11, 12] * 3 + [17, 22, 60]):  # one anomaly: the 60 ms call
        t.ev(f"c{i}", f"w[/]{i % 2}", call("slow[/]:skull:\x1b"), trace=f"R[/]{i}", svc=svc_a, dur=ms * 1_000_000)
    return t


@pytest.fixture
def hostile(tmp_path):
    path = tmp_path / "hostile[b]x :skull:.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in hostile_trace().events) + "\n")
    return path


def stored_strings(path) -> list[str]:
    """The hostile strings as the store holds them (each must be on screen, made visible)."""
    with Store(keep_raw=True) as s:
        s.load([path])
        t = s.sql("""SELECT DISTINCT unnest([variable, location, thread_id, service, lock_id, function_name,
                                             raw->>'$.kind.HttpRequest.url', raw->>'$.kind.Error.message',
                                             raw->>'$.kind.DatabaseQuery.query']) AS s FROM events""")
    return sorted({v for v in t["s"].to_pylist() if v and any(m in v for m in ("[", ":skull:"))})


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def assert_clean(screen: str) -> None:
    bad = {c for c in screen if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029"}
    assert not bad, f"control characters drawn raw: {bad!r}"
    assert "💀" not in screen


@pytest.mark.asyncio
async def test_every_pane_shows_hostile_strings_literally(hostile):
    from tui_support import create_app, settle  # create_app opens on the timeline, as this test expects

    wanted = stored_strings(hostile)
    seen: list[str] = []
    app = create_app([hostile])
    async with app.run_test(size=(240, 60)) as pilot:
        await settle(pilot)

        async def look(*keys: str) -> None:
            for k in keys:
                await pilot.press(k)
                await settle(pilot)
            screen = screen_text(app)
            assert_clean(screen)
            seen.append(screen)

        await look()
        for _ in range(10):  # every event of the all-traces timeline, each one's detail panel
            await look("j")
        await look("t", "j", "enter")  # the hostile trace: lanes named by service/thread
        for _ in range(8):
            await look("j")
        await look("2")
        for _ in range(4):
            await look("j")
        await look("3", "right_square_bracket")
        await look("4")
        await look("enter", "j")
        await look("5")
        await look("6")
        await look("0")  # the dashboard of the hostile trace
        await look("t", "k", "k", "enter", "5")  # all traces: the anomaly of the slow call
        await look("0")
        await look("ctrl+p")
        await look("T", "[")
        await look("escape")
        assert app.return_code is None and app.state == "ready"
    everything = "\n".join(seen)
    # a long string is cut in a narrow cell, a location shown by its last path components:
    # its first or last 12 characters, made visible, are enough
    missing = [p for p in ["hostile[b]x :skull:.jsonl", *wanted]
               if visible(p)[:12] not in everything and visible(p)[-12:] not in everything]
    assert not missing, f"not shown anywhere: {missing}"
    assert "]a[/link].py:1" in everything and "[truncated gzip]" in everything


def cli(*args, columns=None):
    import os

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "raceway_tui.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_reports_print_hostile_strings_literally(hostile, tmp_path):
    wanted = stored_strings(hostile)
    runs = {
        "load": cli("load", hostile),
        "analyze": cli("analyze", hostile),
        "sql": cli("sql", hostile, "-q", "SELECT DISTINCT variable, location, thread_id, service, lock_id, "
                                         "function_name, raw->>'$.kind.HttpRequest.url' AS url, "
                                         "raw->>'$.kind.Error.message' AS msg, "
                                         "raw->>'$.kind.DatabaseQuery.query' AS query FROM events"),
        "analyze --json": cli("analyze", hostile, "--json"),
        "sql --json": cli("sql", hostile, "--json", "-q", "SELECT variable, location FROM events"),
    }
    for name, r in runs.items():
        assert r.returncode == 0 and "Traceback" not in r.stderr, (name, r.stderr[-2000:])
        assert_clean(r.stderr)
        if "--json" in name:
            assert r.stdout.endswith("\n")
            json.loads(r.stdout)  # control characters escaped by the JSON encoder, not made visible
        else:
            assert_clean(r.stdout)
    assert visible(str(hostile)) in runs["load"].stdout
    table = runs["sql"].stdout
    for piece in wanted:
        assert visible(piece) in table, f"{piece!r} missing from the sql table"  # piped: nothing cut
    report = runs["analyze"].stdout
    assert "acct[/]:skull:" in report and "[truncated gzip]" in report
    assert "slow[/]:skull:" in report  # the anomaly's operation
    doc = json.loads(runs["analyze --json"].stdout)
    assert doc["races"]["groups"][0]["variable"] in wanted


def test_an_error_naming_a_hostile_file_is_printed_literally(tmp_path):
    missing = tmp_path / "no[/]such :skull:\x1b[31m.jsonl"
    r = cli("load", missing)
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout
    assert visible(str(missing)) in r.stdout + r.stderr
    assert_clean(r.stdout + r.stderr)


def test_a_crash_of_a_command_is_one_line_a_log_file_and_exit_1(hostile, tmp_path):
    """A bug (injected: the report renderer raises) ends `analyze` with one clear line naming
    a log file that holds the traceback, and exit code 1."""
    import os

    code = ("import raceway_tui.report_view as r, sys\n"
            "def boom(*a, **k): raise RuntimeError('boom [/] \\x1b[31m')\n"
            "r.render = boom\n"
            "from raceway_tui.cli import main\n"
            "main(['analyze', sys.argv[1]])\n")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    r = subprocess.run([sys.executable, "-c", code, str(hostile)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]  # the load summary, then the crash line
    assert len(r.stderr.strip().splitlines()) == 2 and "Traceback" not in r.stderr
    assert "internal error" in last and "RuntimeError: boom [/] \\x1b[31m" in last
    log = tmp_path / "state" / "raceway-tui" / last.rsplit(" in ", 1)[1].rsplit("/", 1)[1]
    assert str(log) in last and "Traceback" in log.read_text() and "boom" in log.read_text()


def test_a_crash_of_the_explorer_exits_1_with_one_line_and_a_log_file(tmp_path):
    """The explorer in a terminal (a pseudo-terminal, as a person runs it) with a bug
    injected in a pane: pressing 4 ends it with exit code 1 and one line naming the log file
    that holds the traceback (it exited 0 after a 2,000-line traceback)."""
    import os
    import pty
    import select
    import time

    from tui_support import ROOT

    code = ("import sys\n"
            "from raceway_tui.panes.variables import VariablesPane\n"
            "def boom(self, data): raise RuntimeError('boom [/]')\n"
            "VariablesPane.show_data = boom\n"
            "from raceway_tui.cli import main\n"
            "main(['open', sys.argv[1]])\n")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), TERM="xterm-256color", COLUMNS="120",
               LINES="36")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code, str(ROOT / "sample_traces" / "banking-unsafe.jsonl")],
                            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    out, sent, deadline = b"", False, time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
            if not sent and "● ready".encode() in out:
                os.write(master, b"4")
                sent = True
        while select.select([master], [], [], 0.2)[0]:  # what it printed on the way out
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    assert sent and proc.returncode == 1
    text = out.decode(errors="replace")
    tail = text[text.rindex("raceway-tui: internal error"):]
    line = tail.splitlines()[0]
    assert "RuntimeError: boom [/]" in line and "Traceback" not in tail
    logs = list((tmp_path / "state" / "raceway-tui").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line.replace("\r", "")
    assert "boom [/]" in logs[0].read_text() and "Traceback" in logs[0].read_text()


def test_the_deadlock_report_prints_lock_names_and_contexts_literally():
    """The readable deadlock table (analyze without --json): lock ids and contexts from the
    trace, with markup and control characters, come out as written, escapes visible."""
    from rich.console import Console

    from raceway_tui.report_view import deadlock_table

    lock_a, lock_b, ctx = "[bold]A[/]", "B\x1b[31m", "t/[link=x]c:skull:"
    example = [{"context": ctx, "holding": lock_a, "holding_location": "x.py:1", "acquiring": lock_b,
                "acquiring_location": "x.py:2"}]
    doc = {"count": 1, "suppressed": [], "groups": [{"severity": "critical", "locks": [lock_a, lock_b],
                                                      "example": example}]}
    console = Console(width=300, record=True, force_terminal=False)
    console.print(deadlock_table(doc))
    text = console.export_text()
    assert lock_a in text and "B\\x1b[31m" in text and ctx in text and "\x1b" not in text
    assert "Potential deadlocks: 1 lock cycle" in [line.strip() for line in text.splitlines()]
