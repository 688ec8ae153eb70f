"""What one generation sends to Supabase, request by request."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from imagen_core.ledger import Ledger, LedgerConfig
from imagen_core.naming import slugify
from tests.supabase.fake import SECRET_KEY, SERVICE_KEY, TABLES, FakeSupabase
from tests.supabase.util import OWNER, PROMPT, make, supabase_config, sync_warnings

pytestmark = pytest.mark.usefixtures("plugin")


def test_one_generation_sends_usage_row_upload_and_image_row(
    fake: FakeSupabase, credentials: str, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supabase_config(isolated_env)
    generation = make()
    assert generation.ok and generation.path is not None and generation.sidecar is not None
    assert sync_warnings(capsys) == []

    usage, upload, image = fake.requests
    day = generation.started_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d")
    name = f"{day}/{slugify(PROMPT)}-7.png"

    # 1. the usage row: PostgREST, schema in Content-Profile, idempotent insert
    assert (usage.method, usage.path) == ("POST", "/rest/v1/imagen_usage")
    assert usage.query == [("on_conflict", "id")]
    assert usage.headers["content-profile"] == "mai"
    assert usage.headers["content-type"] == "application/json"
    assert usage.headers["prefer"] == "return=minimal,resolution=ignore-duplicates"
    assert usage.headers["apikey"] == SERVICE_KEY
    assert usage.headers["authorization"] == f"Bearer {SERVICE_KEY}"
    assert usage.headers["user-agent"].startswith("imagen-supabase/")
    assert set(usage.json()) == set(TABLES["mai", "imagen_usage"].columns)

    # 2. the PNG, raw bytes, create-only, at <date>/<slug>-<seed>.png
    assert (upload.method, upload.path) == ("POST", f"/storage/v1/object/imagen-generated/{name}")
    assert upload.headers["content-type"] == "image/png"
    assert upload.headers["x-upsert"] == "false"
    assert upload.headers["apikey"] == SERVICE_KEY
    assert upload.body == generation.path.read_bytes()
    assert fake.objects["imagen-generated", name][:2] == (upload.body, "image/png")

    # 3. the image row
    assert (image.method, image.path) == ("POST", "/rest/v1/images")
    assert image.headers["content-profile"] == "imagen"
    assert image.headers["prefer"] == "return=minimal,resolution=ignore-duplicates"
    row = image.json()
    assert set(row) == set(TABLES["imagen", "images"].columns)
    result = generation.result
    assert result is not None
    assert row["owner_user_id"] == OWNER
    assert row["prompt"] == PROMPT
    assert row["prompt_sha256"] == generation.request.prompt_sha256
    assert (row["backend"], row["backend_type"], row["model"]) == ("mock", "mock", result.model)
    assert (row["seed"], row["width"], row["height"]) == (7, 16, 16)
    assert row["steps"] == 8  # not asked for: the steps imagen-mock reports
    assert row["latency_s"] == result.latency_s and row["cost_usd"] == 0.0
    assert (row["bucket"], row["storage_path"], row["mime_type"]) == (
        "imagen-generated",
        name,
        "image/png",
    )
    assert row["tags"] == []
    assert row["sidecar"] == json.loads(generation.sidecar.read_text())
    assert row["created_at"] == generation.started_at.isoformat(timespec="seconds")
    assert len(fake.rows["imagen", "images"]) == 1
    assert len(fake.rows["mai", "imagen_usage"]) == 1


def test_usage_row_is_the_local_ledger_row(
    fake: FakeSupabase, credentials: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEN_CALLER", "agent-7")
    supabase_config(isolated_env)
    make()
    sent = fake.requests_to("POST /rest/v1/imagen_usage")[0].json()
    (local,) = Ledger(LedgerConfig()).rows(since=None, until=None)
    assert sent.pop("id")
    assert sent == local.as_dict()
    assert sent["caller"] == "agent-7" and sent["status"] == "ok" and sent["error"] is None
    assert "prompt" not in sent


def test_failed_generation_sends_only_a_usage_row(
    fake: FakeSupabase, credentials: str, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supabase_config(isolated_env)
    with open(isolated_env / ".config" / "imagen.yaml", "a") as config:
        config.write("backends:\n  broken: {type: mock, fail: GPU on fire}\n")
    from imagen_core import BackendError, Request, generate

    with pytest.raises(BackendError):
        generate(Request(PROMPT, width=16, height=16, backend="broken"))
    (usage,) = fake.requests
    row = usage.json()
    assert usage.path == "/rest/v1/imagen_usage"
    assert (row["status"], row["backend"], row["model"], row["latency_s"]) == (
        "failed",
        "broken",
        None,
        None,
    )
    assert "GPU on fire" in row["error"]
    assert sync_warnings(capsys) == []


def test_same_name_gets_a_suffix_never_an_overwrite(
    fake: FakeSupabase, credentials: str, isolated_env: Path
) -> None:
    supabase_config(isolated_env)
    for _ in range(3):
        make()
    uploads = fake.requests_to("POST /storage/v1/object/")
    names = [r.path.rpartition("/")[2] for r in uploads]
    stem = f"{slugify(PROMPT)}-7"
    # The second try of each later image met HTTP 400 {"statusCode": "409"} first.
    assert names == [
        f"{stem}.png",
        f"{stem}.png",
        f"{stem}-1.png",
        f"{stem}.png",
        f"{stem}-1.png",
        f"{stem}-2.png",
    ]
    paths = sorted(r["storage_path"].rpartition("/")[2] for r in fake.rows["imagen", "images"])
    assert paths == [f"{stem}-1.png", f"{stem}-2.png", f"{stem}.png"]
    assert len(fake.objects) == 3


def test_without_sidecar_the_row_carries_the_same_json(
    fake: FakeSupabase, credentials: str, isolated_env: Path
) -> None:
    supabase_config(isolated_env)
    generation = make(sidecar=False)
    assert generation.sidecar is None
    sidecar = fake.requests_to("POST /rest/v1/images")[0].json()["sidecar"]
    assert sidecar["prompt"] == PROMPT and sidecar["seed"] == 7
    assert sidecar["image"] == generation.path.name  # type: ignore[union-attr]


def test_jpeg_output_is_uploaded_as_jpeg(
    fake: FakeSupabase, credentials: str, isolated_env: Path, tmp_path: Path
) -> None:
    supabase_config(isolated_env)
    make(output=tmp_path / "fox.jpg")
    (upload,) = fake.requests_to("POST /storage/v1/object/")
    assert upload.path.endswith("-7.jpg") and upload.headers["content-type"] == "image/jpeg"
    assert upload.body[:2] == b"\xff\xd8"


@pytest.mark.parametrize("variable", ["SUPABASE_SERVICE_KEY", "MAI_SUPABASE_KEY"])
def test_secret_key_goes_in_apikey_only(
    fake: FakeSupabase,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
) -> None:
    # sb_secret_ keys are not JWTs: Supabase refuses them as a bearer token.
    monkeypatch.setenv("SUPABASE_URL", fake.url + "/")
    monkeypatch.setenv(variable, SECRET_KEY)
    supabase_config(isolated_env)
    make()
    assert len(fake.requests) == 3
    for request in fake.requests:
        assert request.headers["apikey"] == SECRET_KEY
        assert "authorization" not in request.headers
        assert not request.path.startswith("//")
    assert sync_warnings(capsys) == []


def test_service_key_wins_over_mai_key(
    fake: FakeSupabase, credentials: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAI_SUPABASE_KEY", "sb_secret_other_key_not_this_one")
    supabase_config(isolated_env)
    make()
    assert {r.headers["apikey"] for r in fake.requests} == {SERVICE_KEY}


def test_custom_bucket_and_tables(fake: FakeSupabase, credentials: str, isolated_env: Path) -> None:
    fake.buckets["team-images"] = None
    supabase_config(isolated_env, keys="bucket: team-images\nusage_table: ''")
    make()
    upload, image = fake.requests
    assert upload.path.startswith("/storage/v1/object/team-images/")
    assert image.path == "/rest/v1/images"
    assert fake.rows["imagen", "images"][0]["bucket"] == "team-images"
    assert fake.rows["mai", "imagen_usage"] == []


def test_one_connection_for_a_session(
    fake: FakeSupabase, credentials: str, isolated_env: Path
) -> None:
    from imagen_core import Request, Session

    supabase_config(isolated_env)
    session = Session()
    for seed in (1, 2, 3):
        session.generate(Request(PROMPT, width=16, height=16, seed=seed))
    assert len(fake.requests) == 9
    assert len(fake.rows["imagen", "images"]) == 3
    assert fake.connections == 1  # one keep-alive connection, not one per request


def test_row_ids_are_uuid7_in_creation_order() -> None:
    import time
    import uuid

    from imagen_supabase.records import new_id

    ids = []
    for _ in range(3):
        ids.append(new_id())
        time.sleep(0.002)
    assert ids == sorted(ids) and len(set(ids)) == 3
    parsed = uuid.UUID(ids[0])
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert abs((parsed.int >> 80) - time.time() * 1000) < 60_000
