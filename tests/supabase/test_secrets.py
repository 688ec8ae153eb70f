"""The key only ever travels in the auth headers; usage rows never carry the prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagen_core import BackendError, Request, generate
from imagen_core.cli import main
from imagen_supabase import credentials as creds_mod
from tests.supabase.fake import FakeSupabase
from tests.supabase.util import PROMPT, make, supabase_config

pytestmark = pytest.mark.usefixtures("plugin")

AUTH_HEADERS = {"apikey", "authorization"}


def everything_but_auth(request: object) -> str:
    from tests.supabase.fake import Recorded

    assert isinstance(request, Recorded)
    headers = {k: v for k, v in request.headers.items() if k not in AUTH_HEADERS}
    return " ".join(
        [
            request.method,
            request.path,
            request.raw_query,
            repr(request.query),
            repr(headers),
            request.body.decode("latin-1"),
        ]
    )


def test_key_and_prompt_never_leave_where_they_must_not(
    fake: FakeSupabase,
    credentials: str,
    isolated_env: Path,
    output_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    supabase_config(isolated_env)
    with open(isolated_env / ".config" / "imagen.yaml", "a") as config:
        config.write("backends:\n  broken: {type: mock, fail: no GPU}\n")
    make()  # success: usage row, upload, image row
    fake.script("POST /storage/", 500, {"statusCode": "500", "error": "x", "message": "y"}, times=9)
    make(seed=8)  # Storage failing
    with pytest.raises(BackendError):
        generate(Request(PROMPT, width=16, height=16, backend="broken"))  # failed generation
    with pytest.raises(SystemExit):
        main(["usage", "--source", "supabase", "--raw"])  # reading back
    assert fake.requests

    for request in fake.requests:
        assert credentials not in everything_but_auth(request)
        assert request.headers["apikey"] == credentials
        assert request.headers.get("authorization") == f"Bearer {credentials}"
        if not request.path.startswith(("/rest/v1/images", "/storage/")):
            # usage rows and reading them back: the hash, never the prompt
            assert PROMPT not in everything_but_auth(request)
            assert PROMPT.lower() not in everything_but_auth(request).lower()
    usage_bodies = [r.json() for r in fake.requests_to("POST /rest/v1/imagen_usage")]
    assert len(usage_bodies) == 3 and all("prompt" not in body for body in usage_bodies)

    out, err = capsys.readouterr()
    assert credentials not in out + err
    for path in output_dir.rglob("*"):
        if path.is_file():
            assert credentials.encode() not in path.read_bytes()
    ledger = isolated_env / ".local" / "share" / "imagen" / "usage.db"
    assert credentials.encode() not in ledger.read_bytes()


def test_key_is_not_in_reprs() -> None:
    creds = creds_mod.Credentials("https://x.supabase.co", "sb_secret_very_secret_value", "K")
    assert "very_secret" not in repr(creds)
    assert "very_secret" not in repr(creds_mod.Environment(creds))


def test_a_key_echoed_by_the_server_is_redacted(
    fake: FakeSupabase, credentials: str, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supabase_config(isolated_env)
    fake.script(
        "POST /rest/v1/imagen_usage",
        400,
        {"code": "P0001", "details": None, "hint": None, "message": f"bad token {credentials}"},
    )
    make()
    err = capsys.readouterr().err
    assert credentials not in err
    assert "bad token [redacted]" in err


def test_redact_leaves_short_values_alone() -> None:
    assert creds_mod.redact("a b c", "b") == "a b c"
    assert creds_mod.redact("key=abcdefghij!", "abcdefghij") == "key=[redacted]!"
    assert creds_mod.redact("text", None) == "text"
