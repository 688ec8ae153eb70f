"""`imagen usage --source supabase`: mai.imagen_usage read back with PostgREST
filters and pagination past Supabase's silent 1000-row cap."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from imagen_core.cli import main
from imagen_supabase.records import parse_timestamp
from tests.supabase.fake import FakeSupabase
from tests.supabase.util import make, supabase_config

pytestmark = pytest.mark.usefixtures("plugin")

START = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
COLUMNS = "created_at,backend,backend_type,model,latency_s,cost_usd,prompt_sha256,caller,status,error,cost_basis"


def usage_rows(
    count: int, *, every: dt.timedelta = dt.timedelta(minutes=7)
) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "created_at": (START + i * every).isoformat(),
            "backend": "flux-dev-replicate" if i % 3 else "mock",
            "backend_type": "replicate" if i % 3 else "mock",
            "model": "black-forest-labs/flux-dev" if i % 3 else "mock-procedural-v1",
            "latency_s": 2.5,
            "cost_usd": 0.025 if i % 3 else 0.0,
            "prompt_sha256": hashlib.sha256(str(i).encode()).hexdigest(),
            "caller": "m",
            "status": "ok",
            "error": None,
        }
        for i in range(count)
    ]


def usage(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["usage", "--source", "supabase", *args])
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_pages_past_the_1000_row_cap(
    fake: FakeSupabase, credentials: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.rows["mai", "imagen_usage"] = usage_rows(2500)
    code, out, err = usage(capsys, "--raw", "--json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert len(rows) == 2500
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)
    assert rows[0] == {
        "created_at": "2026-05-01T00:00:00+00:00",
        "backend": "mock",
        "backend_type": "mock",
        "model": "mock-procedural-v1",
        "latency_s": 2.5,
        "cost_usd": 0.0,
        "prompt_sha256": hashlib.sha256(b"0").hexdigest(),
        "caller": "m",
        "status": "ok",
        "error": None,
        "cost_basis": None,  # rows of an older imagen: the column is null
    }
    gets = fake.requests_to("GET /rest/v1/imagen_usage")
    assert [(g.param("offset"), g.param("limit")) for g in gets] == [
        (["0"], ["1000"]),
        (["1000"], ["1000"]),
        (["2000"], ["1000"]),
    ]
    for get in gets:
        assert get.headers["accept-profile"] == "mai"
        assert get.headers["apikey"] == credentials
        assert get.param("select") == [COLUMNS]
        assert get.param("order") == ["created_at.asc,id.asc"]
        assert get.param("created_at") == []


def test_a_lower_server_cap_is_not_taken_for_the_end(
    fake: FakeSupabase, credentials: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.max_rows = 300  # a project with "Max rows" lowered
    fake.rows["mai", "imagen_usage"] = usage_rows(1000)
    code, out, _ = usage(capsys, "--raw", "--json")
    assert code == 0 and len(json.loads(out)) == 1000
    offsets = [g.param("offset")[0] for g in fake.requests_to("GET /")]
    assert offsets == ["0", "300", "600", "900"]  # 300, 300, 300, 100: shorter, so done


@pytest.mark.parametrize(("count", "requests"), [(0, 1), (1, 2), (1000, 2), (1001, 2)])
def test_when_reading_stops(
    count: int,
    requests: int,
    fake: FakeSupabase,
    credentials: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.rows["mai", "imagen_usage"] = usage_rows(count)
    code, out, _ = usage(capsys, "--raw", "--json")
    assert code == 0 and len(json.loads(out)) == count
    assert len(fake.requests) == requests


def test_since_and_until_become_encoded_filters(
    fake: FakeSupabase, credentials: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.rows["mai", "imagen_usage"] = usage_rows(24 * 5, every=dt.timedelta(hours=1))
    code, out, _ = usage(
        capsys, "--raw", "--json", "--since", "2026-05-02", "--until", "2026-05-03"
    )
    assert code == 0
    days = {r["created_at"][:10] for r in json.loads(out)}
    assert days == {"2026-05-02", "2026-05-03"}
    assert len(json.loads(out)) == 48
    (get,) = fake.requests_to("GET /")[:1]
    assert get.param("created_at") == [
        "gte.2026-05-02T00:00:00+00:00",
        "lt.2026-05-04T00:00:00+00:00",
    ]
    # '+' must travel as %2B: a bare '+' in a query string is a space to the server.
    assert "%2B00%3A00" in get.raw_query or "%2B00:00" in get.raw_query


def test_weekly_report_from_supabase(
    fake: FakeSupabase, credentials: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.rows["mai", "imagen_usage"] = usage_rows(30, every=dt.timedelta(hours=12))
    code, out, _ = usage(capsys, "--json")
    assert code == 0
    groups = json.loads(out)
    assert sum(g["count"] for g in groups) == 30
    assert {g["week"] for g in groups} == {"2026-W18", "2026-W19", "2026-W20"}


def test_synced_rows_read_back_as_the_ledger_has_them(
    fake: FakeSupabase, credentials: str, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supabase_config(isolated_env)
    make()
    make(seed=9)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["usage", "--raw", "--json"])
    local = json.loads(capsys.readouterr().out)
    code, out, _ = usage(capsys, "--raw", "--json")
    assert code == 0 and json.loads(out) == local and len(local) == 2


def test_missing_credentials_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = usage(capsys)
    assert (code, out) == (2, "")
    assert err == (
        "imagen: reading usage from Supabase: SUPABASE_URL and SUPABASE_SERVICE_KEY "
        "(or MAI_SUPABASE_KEY) are not set in the environment (the project URL, "
        "https://<project-ref>.supabase.co and the project's service_role or secret key)\n"
    )


def test_schema_not_exposed_is_one_line(
    fake: FakeSupabase, credentials: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.exposed = ("public", "graphql_public")
    code, out, err = usage(capsys)
    assert (code, out) == (1, "")
    assert err == (
        "imagen: reading mai.imagen_usage failed: HTTP 406: PGRST106: The schema must be one "
        "of the following: public, graphql_public; expose the schema 'mai' in the Supabase "
        "dashboard (Project Settings > Data API > Exposed schemas)\n"
    )


def test_unreachable_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sleeps: list[float]
) -> None:
    from tests.supabase.test_failures import closed_port_url

    url = closed_port_url()
    monkeypatch.setenv("SUPABASE_URL", url)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", "sb_secret_FAKEfake0123456789abcdefFAKE")
    code, _, err = usage(capsys)
    assert code == 1
    assert err == (
        f"imagen: Supabase at {url} is not reachable (connection refused; 4 attempt(s))\n"
    )


def test_a_row_of_another_shape_is_named(
    fake: FakeSupabase, credentials: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script("GET /rest/v1/imagen_usage", 200, [{"created_at": "2026-05-01T00:00:00+00:00"}])
    code, _, err = usage(capsys)
    assert code == 1
    assert err.startswith("imagen: reading mai.imagen_usage: a row is not what imagen writes")


def test_usage_table_turned_off(
    isolated_env: Path, credentials: str, capsys: pytest.CaptureFixture[str]
) -> None:
    supabase_config(isolated_env, keys="usage_table: ''")
    code, _, err = usage(capsys)
    assert code == 2 and "usage_table is empty" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-20T10:00:00+00:00", dt.datetime(2026, 5, 20, 10, tzinfo=dt.timezone.utc)),
        (
            "2026-05-20T10:00:00.5+00:00",
            dt.datetime(2026, 5, 20, 10, 0, 0, 500000, dt.timezone.utc),
        ),
        (
            "2026-05-20 12:00:00.123456789+02",
            dt.datetime(2026, 5, 20, 10, 0, 0, 123456, dt.timezone.utc),
        ),
        ("2026-05-20T10:00:00Z", dt.datetime(2026, 5, 20, 10, tzinfo=dt.timezone.utc)),
        ("2026-05-20T10:00:00", dt.datetime(2026, 5, 20, 10, tzinfo=dt.timezone.utc)),
    ],
)
def test_parse_timestamp(text: str, expected: dt.datetime) -> None:
    assert parse_timestamp(text) == expected
