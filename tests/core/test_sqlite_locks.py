"""when_unlocked: SQLite's immediate "database is locked" is waited out, briefly."""

from __future__ import annotations

import sqlite3

import pytest

from imagen_core.sqlite_locks import when_unlocked


def test_a_lock_that_clears_is_waited_out():
    answers = [sqlite3.OperationalError("database is locked")] * 3 + ["done"]
    calls = []

    def action():
        calls.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert when_unlocked(action, timeout_s=5) == "done"
    assert len(calls) == 4


def test_other_errors_are_not_retried():
    calls = []

    def action():
        calls.append(1)
        raise sqlite3.OperationalError("no such table: usage")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        when_unlocked(action, timeout_s=5)
    assert len(calls) == 1


def test_a_lock_that_stays_is_raised_after_the_timeout():
    calls = []

    def action():
        calls.append(1)
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        when_unlocked(action, timeout_s=0.05)
    assert 2 <= len(calls) < 20  # tried again, with pauses, then gave up
