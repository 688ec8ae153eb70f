"""Failures never fail the generation: one `imagen: cloud sync: …` line, the PNG
and sidecar stay, exit code 0. Retries are bounded, back off, honour Retry-After,
and never write a row twice."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from imagen_core.cli import main
from imagen_supabase import transport
from tests.supabase.fake import FakeSupabase
from tests.supabase.util import make, supabase_config, sync_warnings

pytestmark = pytest.mark.usefixtures("plugin")


def run_cli(capsys: pytest.CaptureFixture[str]) -> tuple[Path, list[str]]:
    """`imagen generate` as a person runs it: (written path, warning lines)."""
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "a fox in the snow", "--size", "16x16", "--seed", "7"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    path = Path(out.strip())
    assert path.is_file() and path.with_suffix(".json").is_file()
    lines = [line for line in err.splitlines() if line.startswith("imagen:")]
    return path, lines


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_storage_5xx_is_retried_then_reported_once(
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    supabase_config(isolated_env)
    # Storage reports its own backend failures as HTTP 500 with the code in the body.
    fake.script(
        "POST /storage/",
        500,
        {"statusCode": "500", "code": "InternalError", "error": "internal", "message": "S3 down"},
        times=10,
    )
    _, lines = run_cli(capsys)
    assert lines == [
        "imagen: cloud sync: upload to imagen-generated/"
        f"{fake.requests[1].path.split('/', 5)[5]} failed: HTTP 500: internal: S3 down; "
        "Supabase Storage is failing; try again later"
    ]
    assert len(fake.requests_to("POST /storage/")) == 4  # 1 + retries (3)
    assert fake.rows["imagen", "images"] == []  # no row without its image
    assert len(fake.rows["mai", "imagen_usage"]) == 1
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2] <= transport.BACKOFF_MAX_S


def test_error_hidden_in_a_400_is_retried_too(
    fake: FakeSupabase, credentials: str, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # HTTP 400 with statusCode "503" in the body is a 503 (Storage's error handler).
    supabase_config(isolated_env)
    fake.script(
        "POST /storage/",
        400,
        {"statusCode": "503", "code": "SlowDown", "error": "unavailable", "message": "later"},
    )
    make()
    assert sync_warnings(capsys) == []
    assert len(fake.requests_to("POST /storage/")) == 2
    assert len(fake.rows["imagen", "images"]) == 1


def test_429_honours_retry_after(
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    supabase_config(isolated_env)
    fake.script(
        "POST /storage/",
        429,
        {"statusCode": "429", "error": "too_many_connections", "code": "SlowDown"},
        headers={"Retry-After": "2"},
    )
    fake.script("POST /rest/v1/images", 503, {"code": "08006", "message": "db restarting"})
    make()
    assert sync_warnings(capsys) == []
    assert sleeps[0] == 2.0  # as asked, not the backoff
    assert 0.4 <= sleeps[1] <= 0.6  # the first backoff step
    assert len(fake.rows["imagen", "images"]) == 1


def test_retry_after_too_long_is_reported_not_waited(
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    supabase_config(isolated_env)
    fake.script(
        "POST /rest/v1/imagen_usage", 429, {"message": "slow down"}, headers={"Retry-After": "3600"}
    )
    make()
    (line,) = sync_warnings(capsys)
    assert line.startswith(
        "imagen: cloud sync: usage row not recorded: insert into mai.imagen_usage failed: HTTP 429"
    )
    assert sleeps == []
    assert len(fake.rows["imagen", "images"]) == 1  # the image went on regardless


def test_unreachable_database_one_line_and_a_quiet_period(
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    url = closed_port_url()
    monkeypatch.setenv("SUPABASE_URL", url)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", "sb_secret_FAKEfake0123456789abcdefFAKE")
    supabase_config(isolated_env)
    _, lines = run_cli(capsys)
    assert lines == [
        f"imagen: cloud sync: Supabase at {url} is not reachable (connection refused; "
        "4 attempt(s)); nothing was synced"
    ]
    assert len(sleeps) == 3

    # Several images in one session: the next ones do not wait through retries again.
    from imagen_core import Request, Session

    session = Session()
    session.generate(Request("one", width=16, height=16))
    sleeps.clear()
    second = session.generate(Request("two", width=16, height=16))
    assert second.ok and sleeps == []
    assert sync_warnings(capsys)[-1] == (
        f"imagen: cloud sync: skipped: Supabase at {url} did not answer moments ago; nothing synced"
    )


@pytest.mark.parametrize(
    ("prefix", "status", "body", "expected"),
    [
        (
            "POST /rest/v1/images",
            406,
            {
                "code": "PGRST106",
                "details": None,
                "hint": None,
                "message": "The schema must be one of the following: public, graphql_public",
            },
            "insert into imagen.images failed: HTTP 406: PGRST106: The schema must be one of "
            "the following: public, graphql_public; expose the schema 'imagen' in the "
            "Supabase dashboard (Project Settings > Data API > Exposed schemas) "
            "(uploaded as imagen-generated/",
        ),
        (
            "POST /rest/v1/images",
            409,
            {
                "code": "23503",
                "details": 'Key (owner_user_id)=(1b4e…) is not present in table "users".',
                "hint": None,
                "message": 'insert or update on table "images" violates foreign key constraint',
            },
            "insert into imagen.images failed: HTTP 409: 23503: insert or update on table "
            '"images" violates foreign key constraint; owner_user_id must be the id of a user '
            "in auth.users (uploaded as",
        ),
        (
            "POST /storage/",
            400,
            {
                "statusCode": "404",
                "code": "NoSuchBucket",
                "error": "Bucket not found",
                "message": "Bucket not found",
            },
            "failed: HTTP 400 (statusCode 404): Bucket not found; create the bucket "
            "'imagen-generated' (`imagen supabase schema`) or set bucket: in the sink block",
        ),
        (
            "POST /storage/",
            400,
            {
                "statusCode": "403",
                "code": "AccessDenied",
                "error": "Unauthorized",
                "message": "new row violates row-level security policy",
            },
            "failed: HTTP 400 (statusCode 403): Unauthorized: new row violates row-level "
            "security policy; check SUPABASE_SERVICE_KEY: it must be the service_role or "
            "secret key",
        ),
    ],
)
def test_4xx_is_one_line_naming_the_fix(
    prefix: str,
    status: int,
    body: dict[str, object],
    expected: str,
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    supabase_config(isolated_env)
    fake.script(prefix, status, body)
    path, lines = run_cli(capsys)
    assert len(lines) == 1 and lines[0].startswith("imagen: cloud sync: ")
    assert expected in lines[0]
    assert sleeps == []  # a 4xx is not retried
    assert "1b4e…" not in lines[0]  # PostgREST's details (they may list the row) stay out
    assert path.read_bytes().startswith(b"\x89PNG")


def test_schema_not_exposed_for_usage_rows(
    fake: FakeSupabase, credentials: str, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.exposed = ("public", "graphql_public", "imagen")
    supabase_config(isolated_env)
    make()
    (line,) = sync_warnings(capsys)
    assert line == (
        "imagen: cloud sync: usage row not recorded: insert into mai.imagen_usage failed: "
        "HTTP 406: PGRST106: The schema must be one of the following: public, graphql_public, "
        "imagen; expose the schema 'mai' in the Supabase dashboard (Project Settings > "
        "Data API > Exposed schemas)"
    )
    assert len(fake.rows["imagen", "images"]) == 1


def test_wrong_key_is_refused_at_the_gateway(
    fake: FakeSupabase,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SUPABASE_URL", fake.url)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", "sb_secret_revoked_key_0123456789")
    supabase_config(isolated_env)
    _, lines = run_cli(capsys)
    assert lines == [
        "imagen: cloud sync: usage row not recorded: insert into mai.imagen_usage failed: "
        "HTTP 401: Invalid API key; Supabase refused the key in SUPABASE_SERVICE_KEY: use the "
        "service_role or secret key; upload to imagen-generated/"
        f"{fake.requests[1].path.split('/', 5)[5]} failed: HTTP 401: Invalid API key; "
        "check SUPABASE_SERVICE_KEY: it must be the service_role or secret key"
    ]


def test_lost_answer_after_commit_inserts_once(
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    # The server commits, then the connection drops before the answer: the retry
    # must not make a second row (client-made id + resolution=ignore-duplicates).
    supabase_config(isolated_env)
    fake.script("POST /rest/v1/imagen_usage", action="drop_after")
    fake.script("POST /rest/v1/images", action="drop_after")
    make()
    assert sync_warnings(capsys) == []
    usage = fake.requests_to("POST /rest/v1/imagen_usage")
    images = fake.requests_to("POST /rest/v1/images")
    assert len(usage) == 2 and usage[0].body == usage[1].body
    assert len(images) == 2 and images[0].body == images[1].body
    assert len(fake.rows["mai", "imagen_usage"]) == 1
    assert len(fake.rows["imagen", "images"]) == 1
    assert len(sleeps) == 2


def test_lost_upload_answer_never_overwrites(
    fake: FakeSupabase, credentials: str, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The object landed but the answer was lost: the retry meets "Duplicate" and
    # takes the next name; the row points at an object holding this very image.
    supabase_config(isolated_env)
    fake.script("POST /storage/", action="drop_after")
    generation = make()
    assert sync_warnings(capsys) == []
    (row,) = fake.rows["imagen", "images"]
    assert row["storage_path"].endswith("-7-1.png")
    assert fake.objects["imagen-generated", row["storage_path"]][0] == generation.path.read_bytes()  # type: ignore[union-attr]


def test_retries_zero_means_one_attempt(
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    supabase_config(isolated_env, keys="retries: 0")
    fake.script("POST /storage/", 502, {"message": "Bad Gateway"})
    make()
    (line,) = sync_warnings(capsys)
    assert "HTTP 502" in line
    assert len(fake.requests_to("POST /storage/")) == 1 and sleeps == []


def test_a_bug_in_the_sink_is_one_line_too(
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from imagen_supabase import records

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(records, "usage_row", broken)
    supabase_config(isolated_env)
    _, lines = run_cli(capsys)
    assert lines == ["imagen: cloud sync: unexpected error: KeyError: 'oops'"]


def test_tls_failure_is_not_retried(
    fake: FakeSupabase,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    # https:// to a plain-HTTP server: the handshake fails, and would again.
    url = fake.url.replace("http://", "https://")
    monkeypatch.setenv("SUPABASE_URL", url)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", "sb_secret_FAKEfake0123456789abcdefFAKE")
    supabase_config(isolated_env)
    make()
    (line,) = sync_warnings(capsys)
    assert line.startswith(f"imagen: cloud sync: Supabase at {url}: TLS failed ([SSL: ")
    assert line.endswith("; nothing was synced")
    assert sleeps == []


def test_answer_too_late_is_retried_and_still_inserts_once(
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    # The first insert times out on our side but is committed on theirs, after the retry.
    import time

    supabase_config(isolated_env, keys="timeout_s: 0.1")
    fake.script("POST /rest/v1/imagen_usage", action="slow", delay=0.3)
    make()
    assert sync_warnings(capsys) == []
    time.sleep(0.3)  # let the late first attempt finish on the server
    assert len(fake.requests_to("POST /rest/v1/imagen_usage")) == 2
    assert len(fake.rows["mai", "imagen_usage"]) == 1
    assert len(sleeps) == 1


def test_no_answer_at_all_names_the_timeout(
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    supabase_config(isolated_env, keys="timeout_s: 0.1\nretries: 1")
    fake.script("POST /rest/v1/imagen_usage", action="slow", delay=0.2, times=2)
    make()
    (line,) = sync_warnings(capsys)
    assert line == (
        f"imagen: cloud sync: Supabase at {fake.url} is not reachable (no answer within 0.1 s; "
        "2 attempt(s)); nothing was synced"
    )


def test_retry_after_and_backoff_values() -> None:
    import email.utils
    import time

    import requests

    def answer(value: str | None) -> requests.Response:
        response = requests.Response()
        if value is not None:
            response.headers["Retry-After"] = value
        return response

    assert transport.retry_after(answer("7")) == 7.0
    assert transport.retry_after(answer(None)) is None
    assert transport.retry_after(answer("soon")) is None
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 18 <= (transport.retry_after(answer(later)) or 0) <= 20
    earlier = email.utils.formatdate(time.time() - 20, usegmt=True)
    assert transport.retry_after(answer(earlier)) == 0.0
    for attempt, base in enumerate([0.5, 1, 2, 4, 8, 8]):
        assert 0.8 * base <= transport.backoff(attempt) <= 1.2 * base
