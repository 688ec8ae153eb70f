"""The built-in cost ledger, the caller identity and `imagen usage`."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from imagen_core import Request, Session, generate
from imagen_core.identity import acting_as, caller
from imagen_core.ledger import COLUMNS, Ledger, LedgerConfig, default_path
from imagen_core.usage import UsageRow, week_groups
from imagen_core.usage_report import by_week
from tests.helpers import run_cli, write_config


def ledger_rows(path: Path) -> list[dict]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM usage ORDER BY id")]
    finally:
        db.close()


def test_every_generation_is_a_row_without_the_prompt(isolated_env, monkeypatch):
    monkeypatch.setenv("IMAGEN_CALLER", "alice")
    write_config(isolated_env, "backends:\n  bad: {type: mock, fail: GPU on fire}\n")
    ok = generate(Request("a secret prompt", width=8, height=8))
    with pytest.raises(Exception, match="GPU on fire"):
        generate(Request("a secret prompt", backend="bad"))
    path = default_path()
    assert path == isolated_env / ".local" / "share" / "imagen" / "usage.db"
    first, second = ledger_rows(path)
    assert first["backend"] == "mock" and first["backend_type"] == "mock"
    assert first["model"] == "mock-procedural-v1" and first["cost_usd"] == 0.0
    assert first["latency_s"] == ok.result.latency_s
    assert first["prompt_sha256"] == Request("a secret prompt").prompt_sha256
    assert first["caller"] == "alice" and first["status"] == "ok" and first["error"] is None
    assert dt.datetime.fromisoformat(first["created_at"]).tzinfo == dt.timezone.utc
    assert second["status"] == "failed" and second["backend"] == "bad"
    assert second["error"] == "mock backend failed as configured: GPU on fire"
    assert second["model"] is None and second["cost_usd"] is None
    assert b"a secret prompt" not in path.read_bytes()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_ledger_path_is_configurable_and_the_sink_can_be_turned_off(isolated_env, tmp_path):
    custom = tmp_path / "elsewhere" / "ledger.db"
    write_config(isolated_env, f"sinks:\n  ledger:\n    path: {custom}\n")
    generate(Request("x", width=8, height=8))
    assert len(ledger_rows(custom)) == 1
    write_config(isolated_env, "sinks:\n  ledger: false\n")
    generate(Request("x", width=8, height=8))
    assert len(ledger_rows(custom)) == 1 and not default_path().exists()


def test_an_unwritable_or_locked_ledger_is_one_warning(isolated_env, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    write_config(isolated_env, f"sinks:\n  ledger:\n    path: {blocker}/usage.db\n")
    warnings: list[str] = []
    record = Session(warn=warnings.append).generate(Request("x", width=8, height=8))
    assert record.path.exists()
    assert len(warnings) == 1 and warnings[0].startswith("ledger: ")

    locked = tmp_path / "locked.db"
    Ledger(LedgerConfig(locked))._connect().close()
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    write_config(isolated_env, f"sinks:\n  ledger:\n    path: {locked}\n")
    import imagen_core.ledger as ledger_module

    original = ledger_module.BUSY_TIMEOUT_S
    ledger_module.BUSY_TIMEOUT_S = 0.05
    try:
        warnings.clear()
        record = Session(warn=warnings.append).generate(Request("x", width=8, height=8))
    finally:
        ledger_module.BUSY_TIMEOUT_S = original
        holder.close()
    assert record.path.exists()
    assert warnings == [f"ledger: cannot write {locked}: database is locked"]


WRITER = """
import sys
from imagen_core.plugins import create_plugin_manager
import imagen_mock
from imagen_core import Request, Session
pm = create_plugin_manager(entry_points=False)
pm.register(imagen_mock, name="mock")
session = Session(plugin_manager=pm)
for i in range(int(sys.argv[1])):
    session.generate(Request(f"p{i}", width=8, height=8), sidecar=False)
"""


def test_concurrent_processes_all_land(isolated_env):
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, "15"], env=os.environ.copy())
        for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert len(ledger_rows(default_path())) == 60


def test_caller_precedence(monkeypatch):
    monkeypatch.setenv("MAI_FROM_ID", "mai-7")
    assert caller() == "mai-7"
    monkeypatch.setenv("IMAGEN_CALLER", "ci-bot")
    assert caller() == "ci-bot"
    monkeypatch.delenv("IMAGEN_CALLER")
    monkeypatch.delenv("MAI_FROM_ID")
    import getpass

    assert caller() == getpass.getuser()


def test_acting_as_names_the_caller_in_this_thread_only(monkeypatch):
    import threading

    monkeypatch.setenv("IMAGEN_CALLER", "the-server")
    seen: list[str] = []
    with acting_as("alice"):
        assert caller() == "alice"
        other = threading.Thread(target=lambda: seen.append(caller()))
        other.start()
        other.join()
        with acting_as(None):  # no client name: the caller stays
            assert caller() == "alice"
    assert caller() == "the-server" and seen == ["the-server"]


@pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"), reason="no tmux")
def test_caller_from_the_tmux_pane_option(monkeypatch):
    tmux = shutil.which("tmux")
    assert tmux, "tmux is required (CI installs it)"
    name = f"imagen-id-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [tmux, "-L", name, "-f", "/dev/null", "new-session", "-d", "-s", "s", "sleep 60"],
        check=True,
    )
    try:
        out = subprocess.run(
            [tmux, "-L", name, "display", "-p", "-t", "s", "#{socket_path},#{pid},0 #{pane_id}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        subprocess.run(
            [tmux, "-L", name, "set-option", "-p", "-t", out[1], "@mai-name", "mai-bob"], check=True
        )
        monkeypatch.setenv("TMUX", out[0])
        monkeypatch.setenv("TMUX_PANE", out[1])
        assert caller() == "mai-bob"
        monkeypatch.setenv("MAI_FROM_ID", "env-wins")
        assert caller() == "env-wins"
    finally:
        subprocess.run([tmux, "-L", name, "kill-server"], check=False)


def row(
    when: str, backend: str = "mock", cost: float | None = 0.01, status: str = "ok", who: str = "a"
) -> UsageRow:
    return UsageRow(
        dt.datetime.fromisoformat(when), backend, "mock", "m", 1.0, cost, "h", who, status
    )


def test_weekly_groups():
    groups = by_week(
        [
            row("2026-11-23T10:00:00+00:00"),
            row("2026-11-29T23:59:59+00:00", cost=None, status="failed"),  # Sunday: same ISO week
            row("2026-11-30T00:00:00+00:00"),  # Monday: next week
            row("2026-11-24T00:00:00+00:00", who="b"),
            row("2026-01-01T00:00:00+00:00"),  # ISO week 2026-W01
        ]
    )
    assert [(g.week, g.caller, g.count, g.failed, g.cost_usd) for g in groups] == [
        ("2026-W01", "a", 1, 0, 0.01),
        ("2026-W48", "a", 2, 1, 0.01),
        ("2026-W48", "b", 1, 0, 0.01),
        ("2026-W49", "a", 1, 0, 0.01),
    ]


def test_usage_command_filters_and_formats(isolated_env, capsys):
    ledger = Ledger(LedgerConfig())
    db = ledger._connect()
    for when, cost in [
        ("2026-05-01T00:00:00+00:00", 0.003),
        ("2026-05-03T23:59:59+00:00", 0.025),
        ("2026-05-04T00:00:00+00:00", 0.04),
    ]:
        db.execute(
            "INSERT INTO usage (created_at, backend, backend_type, model, latency_s, cost_usd, prompt_sha256, caller, status) VALUES (?, 'flux', 'replicate', 'flux-dev', 2.0, ?, 'abc', 'alice', 'ok')",
            (when, cost),
        )
    db.close()
    code, out, _ = run_cli(
        capsys, "usage", "--since", "2026-05-01", "--until", "2026-05-03", "--json", "--raw"
    )
    assert code == 0
    assert [r["cost_usd"] for r in json.loads(out)] == [0.003, 0.025]
    code, out, _ = run_cli(capsys, "usage", "--since", "2026-05-02")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["week", "backend", "model", "caller"]
    assert lines[1].split()[:6] == ["2026-W18", "flux", "flux-dev", "alice", "1", "0"]
    assert lines[2].split()[:6] == ["2026-W19", "flux", "flux-dev", "alice", "1", "0"]
    assert lines[-1] == "total: 2 images, 0 failed, estimated cost $0.065"
    code, out, _ = run_cli(capsys, "usage", "--json")
    assert [g["count"] for g in json.loads(out)] == [2, 1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "2026-5-1x"],
            "Invalid value for '--since': '2026-5-1x' is not a date like 2026-05-01",
        ),
        (["--since", "2026-05-02", "--until", "2026-05-01"], "--until is before --since"),
        (["--source", "nope"], "unknown usage source 'nope'"),
    ],
)
def test_usage_bad_input(capsys, args, message):
    code, _, err = run_cli(capsys, "usage", *args)
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_usage_with_no_ledger_yet(capsys):
    code, out, _ = run_cli(capsys, "usage")
    assert code == 0 and out.startswith("no usage recorded in that period")


def test_an_empty_ledger_file_gets_its_schema(isolated_env):
    path = default_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # created, then interrupted before the schema
    generate(Request("x", width=8, height=8))
    assert len(ledger_rows(path)) == 1


def test_a_ledger_file_without_its_table_is_an_empty_ledger(isolated_env, capsys):
    # `touch empty.db`, or `imagen usage` while a first generation is creating it.
    path = isolated_env / "empty.db"
    path.touch()
    write_config(isolated_env, f"sinks:\n  ledger: {{path: {path}}}\n")
    code, out, err = run_cli(capsys, "usage")
    assert code == 0 and out.startswith("no usage recorded in that period"), err
    assert path.read_bytes() == b""  # reading creates nothing


def test_usage_reads_while_the_first_generation_creates_the_ledger(isolated_env):
    # The file exists (sqlite3.connect made it) but its schema is not there yet.
    path = default_path()
    path.parent.mkdir(parents=True)
    sqlite3.connect(path).close()
    assert list(Ledger(LedgerConfig()).rows(since=None, until=None)) == []


def test_one_unreadable_row_is_skipped_and_reported_once(isolated_env, capsys):
    generate(Request("x", width=8, height=8))
    generate(Request("y", width=8, height=8))
    db = sqlite3.connect(default_path())
    db.execute("UPDATE usage SET error = CAST(X'636166e9' AS TEXT) WHERE id = 1")
    db.commit()
    db.close()
    capsys.readouterr()
    ledger = Ledger(LedgerConfig())
    assert len(list(ledger.rows(since=None, until=None))) == 1
    assert len(list(ledger.rows(since=None, until=None))) == 1
    err = capsys.readouterr().err
    assert err.count("skipped 1 unreadable row") == 1, err


def fill_ledger(count: int) -> list[UsageRow]:
    """``count`` varied rows in the default ledger, the way the sink writes them."""
    start = dt.datetime(2025, 12, 26, 22, tzinfo=dt.timezone.utc)  # across a year's end
    rows = [
        UsageRow(
            start + dt.timedelta(hours=7 * n),
            ["flux", "sdxl", "mock"][n % 3],
            "mock",
            None if n % 5 == 0 else f"model-{n % 2}",
            None if n % 4 == 0 else 0.5 + n / 10,
            None if n % 3 == 1 else 0.001 * (n % 7),
            "h",
            ["alice", "bob"][n % 2],
            "failed" if n % 6 == 0 else "ok",
            "boom" if n % 6 == 0 else None,
            [None, "billed", "computed", "estimated", "billed"][n % 5],
        )
        for n in range(count)
    ]
    ledger = Ledger(LedgerConfig())
    for row in rows:
        values = row.as_dict()
        ledger._insert([values[c] for c in COLUMNS] + [0])  # + inputs
    return rows


def test_the_ledger_groups_in_sql_as_the_core_groups_rows(isolated_env):
    rows = fill_ledger(120)
    ledger = Ledger(LedgerConfig())
    assert ledger.week_groups(since=None, until=None) == by_week(rows)
    since, until = dt.date(2025, 12, 29), dt.date(2026, 1, 4)  # ISO week 2026-W01
    inside = [r for r in rows if since <= r.created_at.date() <= until]
    groups = ledger.week_groups(since=since, until=until)
    assert groups == by_week(inside)
    assert {g.week for g in groups} == {"2026-W01"}
    assert (
        Ledger(LedgerConfig(path=isolated_env / "none.db")).week_groups(since=None, until=None)
        == []
    )


def test_a_source_without_week_groups_is_grouped_from_its_rows(isolated_env):
    rows = fill_ledger(30)

    class RowsOnly:  # like the supabase sink: rows() and nothing else
        def rows(self, *, since, until):
            yield from rows

    assert week_groups(RowsOnly(), since=None, until=None) == by_week(rows)


def test_raw_usage_streams_the_same_json_and_lines(isolated_env, capsys):
    rows = fill_ledger(25)
    code, out, _ = run_cli(capsys, "usage", "--raw", "--json")
    assert code == 0
    assert out == json.dumps([r.as_dict() for r in rows], indent=2) + "\n"
    code, out, _ = run_cli(capsys, "usage", "--raw")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["time", "(UTC)", "backend"]
    assert len(lines) == 26
    assert lines[1].split()[:5] == ["2025-12-26", "22:00:00", "flux", "-", "alice"]
    assert lines[1].split()[5:] == ["failed", "-", "free", "h", "boom"]
    code, out, _ = run_cli(capsys, "usage", "--raw", "--json", "--since", "2030-01-01")
    assert (code, out) == (0, "[]\n")
    code, out, _ = run_cli(capsys, "usage", "--raw", "--since", "2030-01-01")
    assert (code, out) == (0, "no usage recorded in that period\n")


# ------------------------------------------------------------------ input images

OLD_SCHEMA = """
CREATE TABLE usage (
    id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, backend TEXT NOT NULL,
    backend_type TEXT NOT NULL, model TEXT, latency_s REAL, cost_usd REAL,
    prompt_sha256 TEXT NOT NULL, caller TEXT NOT NULL, status TEXT NOT NULL, error TEXT
);
PRAGMA user_version=1;
INSERT INTO usage VALUES (1, '2026-11-01T10:00:00+00:00', 'mock', 'mock', 'm', 0.1, 0.0,
                          'abc', 'bob', 'ok', NULL);
"""


def png_bytes(size=(8, 8), color=(200, 30, 30)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_row_counts_the_input_images(isolated_env):
    from imagen_core import ImageInput

    write_config(isolated_env, "")
    image = ImageInput.from_bytes(png_bytes())
    reference = ImageInput.from_bytes(png_bytes(color=(0, 0, 255)), role="reference")
    generate(Request("plain", width=8, height=8))
    generate(Request("edit", width=8, height=8, inputs=[image, reference]))
    assert [row["inputs"] for row in ledger_rows(default_path())] == [0, 2]


def test_a_ledger_of_an_older_imagen_gains_the_inputs_column_and_keeps_its_rows(isolated_env):
    from imagen_core import ImageInput

    write_config(isolated_env, "")
    path = default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()
    generate(Request("edit", width=8, height=8, inputs=[ImageInput.from_bytes(png_bytes())]))
    old, new = ledger_rows(path)
    assert (old["caller"], old["inputs"]) == ("bob", 0)
    assert (new["prompt_sha256"], new["inputs"]) == (Request("edit").prompt_sha256, 1)
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == 3
    rows = list(Ledger(LedgerConfig(path=path)).rows(since=None, until=None))
    assert [row.caller for row in rows] == ["bob", caller()]


def test_two_processes_migrating_at_once_both_write(isolated_env, tmp_path):
    path = tmp_path / "usage.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()
    code = (
        "import sys; from pathlib import Path; from imagen_core.ledger import _migrate;"
        "import sqlite3; db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None);"
        "_migrate(db)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 4
    assert [row["inputs"] for row in ledger_rows(path)] == [0]


def test_imagen_usage_reads_a_ledger_of_an_older_imagen_before_any_new_write(isolated_env):
    write_config(isolated_env, "")
    path = default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()
    ledger = Ledger(LedgerConfig(path=path))
    rows = list(ledger.rows(since=None, until=None))
    assert [(row.caller, row.cost_basis) for row in rows] == [("bob", None)]
    (group,) = ledger.week_groups(since=None, until=None)
    assert (group.caller, group.count, group.cost_basis) == ("bob", 1, None)
