"""Budgets, --max-cost and --dry-run: the price before the spend, and a hard stop
that holds when several processes race for the last dollars."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from imagen_core import Request, Session
from imagen_core.budgets import BudgetBook, BudgetExceeded
from imagen_core.config import Budget
from imagen_core.errors import ConfigError, UsageError
from tests.helpers import write_config

UTC = dt.timezone.utc
CLI = "from imagen_core.cli import main; main()"


@pytest.fixture
def priced(isolated_env: Path, output_dir: Path) -> Path:
    return write_config(
        isolated_env,
        f"""
output: {{dir: '{output_dir}', preview: off}}
backends:
  paid: {{type: mock, cost_usd: 0.04}}
  other: {{type: mock, cost_usd: 0.04}}
  broken: {{type: mock, cost_usd: 0.04, fail: "out of memory"}}
  free: {{type: mock}}
budgets:
  - {{period: day, limit_usd: 0.10, backend: paid}}
  - {{period: week, limit_usd: 0.13}}
""",
    )


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=120,
    )


def test_budgets_are_typed_config_with_positions(isolated_env: Path) -> None:
    path = write_config(
        isolated_env,
        "budgets:\n  - {period: fortnight, limit_usd: 1}\n  - {period: day}\n  - {limit_usd: -2}\n",
    )
    with pytest.raises(ConfigError) as info:
        Session()
    problems = "\n".join(info.value.problems)
    assert (
        f"budgets.0.period: expected one of day | week | month, got 'fortnight' ({path}:2:"
        in problems
    )
    assert "budgets.1: limit_usd is missing" in problems
    assert "budgets.2" in problems and "limit_usd must be a number above 0, got -2" in problems


@pytest.mark.parametrize(
    ("period", "now", "start", "reset"),
    [
        (
            "day",
            "2026-11-29T23:59:59+00:00",
            "2026-11-29T00:00:00+00:00",
            "2026-11-30T00:00:00+00:00",
        ),
        # Sunday evening in UTC-5 is Monday in UTC: the week has turned.
        (
            "week",
            "2026-11-29T20:00:00-05:00",
            "2026-11-30T00:00:00+00:00",
            "2026-12-07T00:00:00+00:00",
        ),
        (
            "week",
            "2026-11-29T23:59:59+00:00",
            "2026-11-23T00:00:00+00:00",
            "2026-11-30T00:00:00+00:00",
        ),
        (
            "month",
            "2026-12-31T12:00:00+00:00",
            "2026-12-01T00:00:00+00:00",
            "2027-01-01T00:00:00+00:00",
        ),
        (
            "month",
            "2028-02-29T00:00:00+00:00",
            "2028-02-01T00:00:00+00:00",
            "2028-03-01T00:00:00+00:00",
        ),
    ],
)
def test_periods_are_utc(period: str, now: str, start: str, reset: str) -> None:
    window = Budget(period=period, limit_usd=1).window(dt.datetime.fromisoformat(now))  # type: ignore[arg-type]
    assert window == (dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(reset))


def test_a_run_that_would_go_over_is_refused_before_the_backend_runs(priced, output_dir) -> None:
    session = Session()
    for _ in range(2):
        session.generate(Request("x", backend="paid", width=16, height=16))
    with pytest.raises(BudgetExceeded) as info:
        session.generate(Request("x", backend="paid", width=16, height=16))
    assert info.value.exit_code == 2 and info.value.http_status == 429
    assert str(info.value) == (
        "over budget: the daily budget of $0.10 for backend paid has $0.0800 spent and this run "
        f"is estimated at $0.0400; it resets {info.value.status.resets:%Y-%m-%d} 00:00 UTC "
        "(budgets: in imagen.yaml)"
    )
    assert len(list(output_dir.rglob("*.png"))) == 2
    # The weekly budget counts every backend: 0.08 spent, 0.04 more would pass 0.13 no more.
    session.generate(Request("x", backend="other", width=16, height=16))
    with pytest.raises(BudgetExceeded, match=r"the weekly budget of \$0.13 has \$0.1200 spent"):
        session.generate(Request("x", backend="other", width=16, height=16))
    session.generate(Request("free things pass", backend="free", width=16, height=16))


def test_a_failed_run_releases_its_reservation(priced) -> None:
    session = Session()
    for _ in range(4):  # each reserves 0.04 of 0.13, and gives it back
        with pytest.raises(Exception, match="out of memory"):
            session.generate(Request("x", backend="broken", width=16, height=16))
    book = session.budget_book()
    assert [s.reserved_usd for s in book.statuses()] == [0.0, 0.0]
    session.generate(Request("x", backend="paid", width=16, height=16))


def test_a_dead_processs_reservation_expires(tmp_path) -> None:
    book = BudgetBook(tmp_path / "usage.db", [Budget(period="day", limit_usd=0.1)])
    now = dt.datetime(2026, 11, 28, 12, tzinfo=UTC)
    book.reserve("paid", "me", 0.08, now=now - dt.timedelta(hours=3))  # never released
    with pytest.raises(BudgetExceeded):
        book.reserve("paid", "me", 0.08, now=now - dt.timedelta(hours=2, minutes=30))
    assert book.reserve("paid", "me", 0.08, now=now) is not None


def test_an_unknown_price_passes_only_while_something_is_left(tmp_path) -> None:
    book = BudgetBook(tmp_path / "usage.db", [Budget(period="day", limit_usd=0.1)])
    book.reserve("local", "me", None)
    book.reserve("paid", "me", 0.1)
    with pytest.raises(BudgetExceeded, match="this run's price is unknown"):
        book.reserve("local", "me", None)


def test_budgets_hold_when_processes_race_for_the_last_dollars(priced, output_dir) -> None:
    # Six processes, room for two: the check and the reservation are one transaction.
    config = priced.read_text().replace(
        "paid: {type: mock, cost_usd: 0.04}", "paid: {type: mock, cost_usd: 0.04, latency_s: 0.5}"
    )
    priced.write_text(config)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLI, "generate", f"race {i}", "-b", "paid", "--size", "16x16"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    results = [(p.wait(120), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 0, 2, 2, 2, 2], results
    assert all("over budget" in err for code, err in results if code == 2)
    assert len(list(output_dir.rglob("*.png"))) == 2
    db = sqlite3.connect(Session().budget_book().path)
    assert db.execute("SELECT COUNT(*) FROM reservations").fetchone() == (0,)
    assert db.execute("SELECT SUM(cost_usd) FROM usage WHERE backend = 'paid'").fetchone() == (
        0.08,
    )


def test_a_budget_for_one_caller_counts_only_that_caller(isolated_env, output_dir) -> None:
    write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}'}}\nbackends:\n  paid: {{type: mock, cost_usd: 0.05}}\n"
        "budgets:\n  - {period: month, limit_usd: 0.05, caller: ci}\n",
    )
    env = {**os.environ, "IMAGEN_CALLER": "ci"}
    assert run("generate", "x", "-b", "paid", "--size", "8x8", env=env).returncode == 0
    refused = run("generate", "x", "-b", "paid", "--size", "8x8", env=env)
    assert refused.returncode == 2 and "the monthly budget of $0.05 for caller ci" in refused.stderr
    assert run("generate", "x", "-b", "paid", "--size", "8x8").returncode == 0  # not ci


def test_max_cost_refuses_an_estimate_above_it(priced, output_dir, isolated_env) -> None:
    over = run("generate", "x", "-b", "paid", "--max-cost", "0.01")
    assert over.returncode == 2
    assert over.stderr == (
        "imagen: --max-cost $0.0100: backend 'paid' is estimated at $0.0400 for this image "
        "(backends.*.cost_usd)\n"
    )
    assert run("generate", "x", "-b", "paid", "--size", "8x8", "--max-cost", "0.04").returncode == 0
    pair = run("compare", "x", "-m", "paid,free", "--size", "8x8", "--max-cost", "0.03")
    assert pair.returncode == 2 and "this call is estimated at $0.0400" in pair.stderr
    queued = run("submit", "x", "-b", "paid", "--max-cost", "0.01")
    assert queued.returncode == 2 and "--max-cost $0.0100" in queued.stderr
    assert len(list(output_dir.rglob("*.png"))) == 1


def test_dry_run_prices_and_writes_nothing(priced, output_dir) -> None:
    dry = run("compare", "a fox", "-m", "paid,free", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == "dry run: nothing was generated"
    assert lines[1].split() == [
        "paid",
        "mock-procedural-v1",
        "$0.04",
        "per",
        "image",
        "(backends.*.cost_usd)",
    ]
    assert lines[2].split()[:3] == ["free", "mock-procedural-v1", "free"]
    assert lines[-1] == "total: $0.04 for 2 images"
    assert run("generate", "x", "-b", "paid", "--dry-run").returncode == 0
    assert run("submit", "x", "-b", "paid", "--dry-run").stdout.startswith("dry run")
    assert not output_dir.exists() or not list(output_dir.rglob("*"))
    queue = Session().queue()
    assert queue.list() == []


def test_usage_shows_the_budgets_and_a_chart(priced) -> None:
    session = Session()
    session.generate(Request("x", backend="paid", width=8, height=8))
    session.generate(Request("x", backend="other", width=8, height=8))
    budgets = run("usage", "--budgets", "--json")
    assert budgets.returncode == 0, budgets.stderr
    day, week = json.loads(budgets.stdout)
    assert (day["period"], day["backend"], day["spent_usd"], day["remaining_usd"]) == (
        "day",
        "paid",
        0.04,
        0.06,
    )
    assert (week["spent_usd"], week["remaining_usd"]) == (0.08, 0.05)
    chart = run("usage", "--chart").stdout.splitlines()
    assert chart[0] == "spend per week, stacked by backend"
    bar = chart[1].split("│")[1]
    assert bar.count("█") == bar.count("▓") == 20  # two backends, equal spend
    assert chart[2].split() == ["█", "other", "▓", "paid"] or chart[2].split() == [
        "█",
        "paid",
        "▓",
        "other",
    ]
    text = run("usage").stdout
    assert "budget" in text and "$0.0400" in text


def test_budgets_need_the_ledger(isolated_env) -> None:
    write_config(
        isolated_env, "sinks: {ledger: false}\nbudgets:\n  - {period: day, limit_usd: 1}\n"
    )
    with pytest.raises(UsageError, match="budgets: need the ledger sink"):
        Session().generate(Request("x", width=8, height=8))


def test_a_backend_priced_by_the_second_costs_its_time(isolated_env, output_dir) -> None:
    write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}'}}\n"
        "backends:\n  gpu: {type: mock, usd_per_second: 0.5, latency_s: 0.2}\n"
        "  bad: {type: mock, usd_per_second: -1}\n",
    )
    with pytest.raises(
        ConfigError, match=r"backends.bad.usd_per_second: expected a price of 0 or more USD, got -1"
    ):
        Session()
    write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}'}}\n"
        "backends:\n  gpu: {type: mock, usd_per_second: 0.5, latency_s: 0.2}\n",
    )
    session = Session()
    first = session.estimate(Request("x", backend="gpu"))
    assert (first.usd, first.basis) == (None, "unknown")  # no run to go on yet
    made = session.generate(Request("x", backend="gpu", width=8, height=8))
    result = made.result
    assert result is not None and result.cost_basis == "estimated"
    assert result.cost_usd == round(0.5 * result.latency_s, 6) and result.latency_s >= 0.2
    sidecar = json.loads(made.sidecar.read_text())  # type: ignore[union-attr]
    assert (sidecar["cost_usd"], sidecar["cost_basis"]) == (result.cost_usd, "estimated")
    after = session.estimate(Request("x", backend="gpu"))
    assert after.basis == "estimated" and after.usd == round(0.5 * result.latency_s, 6)
    assert "$1800.00/hour" in after.source
    plain = session.generate(Request("x", width=8, height=8)).result
    assert plain is not None and (plain.cost_usd, plain.cost_basis) == (0.0, "computed")
