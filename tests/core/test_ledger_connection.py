"""The ledger keeps one connection for all its rows (issue 15: opening and closing
one per row cost more than the rest of a small job), and that connection stays
correct: shared by threads, reopened when the file goes, closed at exit."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from imagen_core import Request, Session
from imagen_core.ledger import Ledger, LedgerConfig, default_path
from imagen_core.models import Generation, Result


def rows(path: Path) -> list[tuple[str, str | None]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT status, error FROM usage ORDER BY id").fetchall()
    finally:
        db.close()


@pytest.fixture
def connects(monkeypatch) -> list[Path]:
    """Every connection a ledger opens, by path."""
    opened: list[Path] = []
    original = Ledger._connect

    def counting(self: Ledger, **options: bool) -> sqlite3.Connection:
        opened.append(self.path)
        return original(self, **options)

    monkeypatch.setattr(Ledger, "_connect", counting)
    return opened


def generation(n: int) -> Generation:
    return Generation(
        request=Request(f"prompt {n}", width=8, height=8),
        backend="mock",
        backend_type="mock",
        prompt_sent=f"prompt {n}",
        started_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(microseconds=n),
        result=Result(image=b"png", seed=n, model="m", mime_type="image/png"),
    )


def test_a_long_lived_session_writes_every_row_on_one_connection(isolated_env, connects):
    session = Session()
    for n in range(5):
        session.generate(Request(f"p{n}", width=8, height=8), sidecar=False)
        # Each row is committed as it is written: another reader sees it at once.
        assert rows(default_path())[-1] == ("ok", None)
    assert connects == [default_path()]
    assert len(rows(default_path())) == 5


def test_threads_share_the_connection_and_every_row_lands(isolated_env, connects):
    ledger = Ledger(LedgerConfig())
    failures: list[BaseException] = []

    def write(start: int) -> None:
        try:
            for n in range(start, start + 20):
                record = generation(n)
                ledger.begin(record)  # the "interrupted" row ...
                ledger.send(record)  # ... completed in place
        except BaseException as exc:  # reported by the test, not lost in a thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert rows(default_path()) == [("ok", None)] * 80  # no "interrupted" row left over
    assert connects == [default_path()]
    ledger.close()


def test_a_ledger_file_removed_while_the_process_runs_is_made_again(isolated_env, connects):
    session = Session()
    session.generate(Request("before", width=8, height=8), sidecar=False)
    path = default_path()
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    session.generate(Request("after", width=8, height=8), sidecar=False)
    assert rows(path) == [("ok", None)]  # the new file, with the new row
    assert connects == [path, path]


def test_close_folds_the_wal_back_and_the_next_row_reopens(isolated_env, connects):
    ledger = Ledger(LedgerConfig())
    ledger.send(generation(1))
    path = default_path()
    assert Path(f"{path}-wal").exists()  # the connection is still open
    ledger.close()
    assert not Path(f"{path}-wal").exists()
    ledger.send(generation(2))
    assert len(rows(path)) == 2 and len(connects) == 2
    ledger.close()


def test_a_one_shot_generate_leaves_a_consistent_ledger_and_no_wal(isolated_env):
    script = (
        "from imagen_core import Request, generate\n"
        "generate(Request('one shot', width=8, height=8), sidecar=False)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    path = default_path()
    assert rows(path) == [("ok", None)]
    # Closed at exit: SQLite folded the WAL into the file and removed it.
    assert not Path(f"{path}-wal").exists()


def test_the_tmux_pane_name_is_asked_once_per_pane_within_its_ttl(monkeypatch):
    from imagen_core import identity

    asked: list[str] = []

    def pane_name() -> str:
        asked.append(os.environ["TMUX_PANE"])
        return f"mai-{os.environ['TMUX_PANE']}"

    monkeypatch.setattr(identity, "_tmux_pane_name", pane_name)
    monkeypatch.setattr(identity, "_panes", {})
    monkeypatch.setenv("TMUX", "/tmp/tmux-test/default,1,0")
    monkeypatch.setenv("TMUX_PANE", "%1")
    assert [identity.caller() for _ in range(3)] == ["mai-%1"] * 3
    monkeypatch.setenv("TMUX_PANE", "%2")  # another pane: asked for its own name
    assert identity.caller() == "mai-%2"
    assert asked == ["%1", "%2"]
    monkeypatch.setattr(identity, "PANE_NAME_TTL_S", 0.0)  # past the TTL: asked again
    assert identity.caller() == "mai-%2"
    assert asked == ["%1", "%2", "%2"]


def test_a_dropped_ledger_closes_its_connection(tmp_path):
    # A session that ends drops its ledger with the connection open; the
    # connection (in a reference cycle of its own) is closed with it, not left
    # to the garbage collector: SQLite checkpoints and removes the WAL.
    import gc

    path = tmp_path / "usage.db"
    ledger = Ledger(LedgerConfig(path=path))
    ledger.send(generation(1))
    wal = path.with_name("usage.db-wal")
    assert wal.exists()
    gc.disable()  # only the ledger's own going may close it
    try:
        del ledger
        assert not wal.exists()
    finally:
        gc.enable()
