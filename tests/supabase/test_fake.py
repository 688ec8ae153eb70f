"""The fake Supabase answers as the reference says the real one does
(../shared/reference/backend-apis.md §2–§3), traps included."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.supabase.fake import SECRET_KEY, SERVICE_KEY, FakeSupabase

AUTH = {"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"}
USAGE = {
    "created_at": "2026-05-01T10:00:00+00:00",
    "backend": "mock",
    "backend_type": "mock",
    "prompt_sha256": "0" * 64,
    "caller": "m",
    "status": "ok",
}


def post_usage(fake: FakeSupabase, row: dict[str, object], **headers: str) -> requests.Response:
    return requests.post(
        f"{fake.url}/rest/v1/imagen_usage",
        json=row,
        headers={**AUTH, "Content-Profile": "mai", **headers},
        timeout=5,
    )


def test_gateway_wants_a_known_apikey(fake: FakeSupabase) -> None:
    none = requests.get(f"{fake.url}/rest/v1/imagen_usage", timeout=5)
    assert none.status_code == 401 and none.json()["message"] == "No API key found in request"
    wrong = requests.get(f"{fake.url}/rest/v1/imagen_usage", headers={"apikey": "nope"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid API key"
    bearer_secret = requests.get(
        f"{fake.url}/rest/v1/imagen_usage",
        headers={
            "apikey": SECRET_KEY,
            "Authorization": f"Bearer {SECRET_KEY}",
            "Accept-Profile": "mai",
        },
        timeout=5,
    )
    assert bearer_secret.status_code == 401 and bearer_secret.json()["code"] == "PGRST301"
    apikey_only = requests.get(
        f"{fake.url}/rest/v1/imagen_usage",
        headers={"apikey": SECRET_KEY, "Accept-Profile": "mai"},
        timeout=5,
    )
    assert apikey_only.status_code == 200


def test_insert_is_201_with_an_empty_body_unless_asked(fake: FakeSupabase) -> None:
    minimal = post_usage(fake, USAGE)
    assert (minimal.status_code, minimal.content) == (201, b"")
    full = post_usage(fake, USAGE, Prefer="return=representation")
    assert full.status_code == 201
    (row,) = full.json()
    assert uuid.UUID(row["id"]) and row["error"] is None


def test_schema_header_decides(fake: FakeSupabase) -> None:
    public = requests.post(f"{fake.url}/rest/v1/imagen_usage", json=USAGE, headers=AUTH, timeout=5)
    assert public.status_code == 404 and public.json()["code"] == "PGRST205"
    fake.exposed = ("public", "graphql_public")
    hidden = post_usage(fake, USAGE)
    assert hidden.status_code == 406
    assert hidden.json() == {
        "code": "PGRST106",
        "details": None,
        "hint": None,
        "message": "The schema must be one of the following: public, graphql_public",
    }


def test_unique_not_null_and_unknown_column(fake: FakeSupabase) -> None:
    row = {**USAGE, "id": str(uuid.uuid4())}
    assert post_usage(fake, row).status_code == 201
    again = post_usage(fake, row)
    assert again.status_code == 409 and again.json()["code"] == "23505"
    ignored = post_usage(fake, row, Prefer="resolution=ignore-duplicates")
    assert ignored.status_code == 201
    assert len(fake.rows["mai", "imagen_usage"]) == 1
    missing = post_usage(fake, {k: v for k, v in USAGE.items() if k != "caller"})
    assert missing.status_code == 400 and missing.json()["code"] == "23502"
    unknown = post_usage(fake, {**USAGE, "prompt": "a fox"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "PGRST204"


def test_select_caps_silently_and_a_bare_plus_is_a_space(fake: FakeSupabase) -> None:
    for i in range(1200):
        fake.rows["mai", "imagen_usage"].append(
            {
                **USAGE,
                "id": str(i),
                "model": None,
                "latency_s": None,
                "cost_usd": None,
                "error": None,
            }
        )
    headers = {**AUTH, "Accept-Profile": "mai"}
    page = requests.get(f"{fake.url}/rest/v1/imagen_usage?limit=5000", headers=headers, timeout=5)
    assert page.status_code == 200 and len(page.json()) == 1000
    assert page.headers["Content-Range"] == "0-999/*"
    counted = requests.get(
        f"{fake.url}/rest/v1/imagen_usage?limit=10&offset=10",
        headers={**headers, "Prefer": "count=exact"},
        timeout=5,
    )
    assert counted.status_code == 206 and counted.headers["Content-Range"] == "10-19/1200"
    ranged = requests.get(
        f"{fake.url}/rest/v1/imagen_usage", headers={**headers, "Range": "0-4"}, timeout=5
    )
    assert len(ranged.json()) == 5
    bare = requests.get(
        f"{fake.url}/rest/v1/imagen_usage?created_at=gte.2026-05-01T00:00:00+00:00",
        headers=headers,
        timeout=5,
    )
    assert bare.status_code == 400 and bare.json()["code"] == "22007"


def test_storage_duplicate_is_http_400_with_409_inside(fake: FakeSupabase) -> None:
    url = f"{fake.url}/storage/v1/object/imagen-generated/2026-05-01/a-1.png"
    headers = {**AUTH, "Content-Type": "image/png"}
    first = requests.post(url, data=b"png", headers=headers, timeout=5)
    assert first.status_code == 200
    assert first.json()["Key"] == "imagen-generated/2026-05-01/a-1.png"
    again = requests.post(url, data=b"png", headers=headers, timeout=5)
    assert again.status_code == 400
    assert again.json()["statusCode"] == "409" and again.json()["error"] == "Duplicate"
    upsert = requests.post(url, data=b"new", headers={**headers, "x-upsert": "true"}, timeout=5)
    assert upsert.status_code == 200
    text = requests.post(url + ".txt", data=b"x", headers=AUTH, timeout=5)
    assert text.status_code == 400 and text.json()["statusCode"] == "415"
    nobucket = requests.post(
        f"{fake.url}/storage/v1/object/nope/a.png", data=b"x", headers=headers, timeout=5
    )
    assert nobucket.status_code == 400 and nobucket.json()["statusCode"] == "404"


def test_scripted_failures_and_drops(fake: FakeSupabase) -> None:
    fake.script("GET /rest", 503, {"message": "down"}, times=2)
    fake.script("GET /rest", action="drop")
    headers = {**AUTH, "Accept-Profile": "mai"}
    url = f"{fake.url}/rest/v1/imagen_usage"
    assert requests.get(url, headers=headers, timeout=5).status_code == 503
    assert requests.get(url, headers=headers, timeout=5).status_code == 503
    with pytest.raises(requests.ConnectionError):
        requests.get(url, headers=headers, timeout=5)
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    assert len(fake.requests) == 4
