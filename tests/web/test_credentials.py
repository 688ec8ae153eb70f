"""Credentials inside URLs never leave imagen: a backend's error text carrying
``user:pw123secret@`` is redacted where the error text is made, so it reaches no
output (stdout, stderr, the worker's --json log, API answers) and no file (the
queue, the ledger, sidecars, compare.json)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
from starlette.testclient import TestClient

from imagen_core import Session, hookimpl
from imagen_core.errors import BackendError, describe, redact
from imagen_web.app import create_app
from tests.helpers import registered, run_cli, write_config

SECRET = "pw123secret"
URL = f"http://user:{SECRET}@127.0.0.1:9/"


@attrs.frozen
class _Settings:
    pass


class _Raising:
    """A backend failing with a plain (non-imagen) exception quoting its URL."""

    def __init__(self, _settings: object) -> None:
        pass

    def generate(self, request: object, progress: object) -> object:
        raise ConnectionRefusedError(f"cannot connect to {URL}")


class RaisingPlugin:
    @hookimpl
    def register_backends(self, register):
        register("raising", _Raising, config=_Settings)


def test_redact_cuts_the_userinfo_of_every_url():
    text = f"a {URL} and https://tok@example.com/x and mailto:me@example.com"
    assert redact(text) == (
        "a http://***@127.0.0.1:9/ and https://***@example.com/x and mailto:me@example.com"
    )
    assert SECRET not in describe(OSError(URL)) and SECRET not in str(BackendError(URL))


def test_no_output_and_no_file_holds_a_planted_credential(isolated_env, output_dir, capsys, pm):
    config = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}', preview: off}}\n"
        "queue: {type: sqlite, poll_s: 0.02}\n"
        "backends:\n"
        "  mock: {type: mock}\n"
        f"  leaky: {{type: mock, fail: 'cannot reach {URL}'}}\n"
        "  raising: {type: raising}\n",
    )
    outputs: list[str] = []

    def run(*args: str) -> int:
        code, out, err = run_cli(capsys, *args)
        outputs.extend([out, err])
        return code

    with registered(pm, RaisingPlugin(), "raising"):
        assert run("generate", "-b", "leaky", "x", "--size", "8x8") == 1
        assert run("generate", "-b", "raising", "x", "--size", "8x8") == 1
        assert run("compare", "-m", "leaky,raising,mock", "x", "--size", "8x8") == 0
        assert run("submit", "-b", "leaky", "x", "--size", "8x8", "--max-attempts", "1") == 0
        assert run("submit", "-b", "raising", "x", "--size", "8x8", "--max-attempts", "1") == 0
        assert run("worker", "--once", "--json") in (0, 1)
        assert run("jobs") == 0
        assert run("jobs", "--json") == 0
        assert run("usage", "--raw") == 0
        with TestClient(create_app(Session(config))) as client:
            answers = [
                client.post("/v1/generate", json={"prompt": "x", "backend": "leaky", "width": 8}),
                client.post("/v1/generate", json={"prompt": "x", "backend": "raising"}),
                client.get("/v1/jobs"),
                client.get("/v1/usage?raw=true"),
                client.get("/v1/images"),
            ]
        outputs += [answer.text for answer in answers]

    joined = "\n".join(outputs)
    # The failures were reported (with the redacted URL), just not the secret.
    assert "http://***@127.0.0.1:9/" in joined and "ConnectionRefusedError" in joined
    assert SECRET not in joined
    assert json.loads(answers[3].text)["rows"], "the usage answer has rows"
    files = [path for path in Path(isolated_env).rglob("*") if path.is_file() and path != config]
    names = {path.name for path in files}
    assert {"jobs.db", "usage.db", "compare.json"} <= names, names
    leaking = [str(path) for path in files if SECRET.encode() in path.read_bytes()]
    assert leaking == []


def test_the_placeholder_of_a_hint_is_not_a_credential():
    hint = "set it to postgresql://user:password@host:5432/dbname"
    assert redact(hint) == hint
    assert redact("postgresql://user:passwordX@h/") == "postgresql://***@h/"
