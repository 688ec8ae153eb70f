"""The token never appears in a message, a warning, a traceback, a sidecar, a file or
a repr, and never leaves for a host that is not Replicate's."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagen_core import BackendError, Request, load
from imagen_core.registry import collect
from imagen_replicate.client import ReplicateClient
from imagen_replicate.pacing import Pacing
from tests.helpers import run_cli
from tests.replicate.conftest import Steps
from tests.replicate.fake_replicate import Reply


def every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def cli(capsys, *args: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, *args)
    return code, out + err


def test_not_in_the_image_the_sidecar_or_any_file(
    capsys, fake, fake_time, token, configure, isolated_env, tmp_path
):
    configure(extra="input: {output_format: png}")
    code, text = cli(capsys, "generate", "a cat", "--backend", "rep", "--seed", "3")
    assert code == 0, text
    files = every_file(tmp_path)
    assert any(p.suffix == ".json" and "Pictures" in p.parts for p in files)  # the sidecar
    assert any(p.suffix == ".png" for p in files)
    for path in files:
        assert token.encode() not in path.read_bytes(), path
    assert token not in text


def test_not_in_errors_even_when_the_server_repeats_it(capsys, fake, fake_time, token, configure):
    # A misbehaving server (or proxy) that echoes the Authorization header back.
    configure()
    fake.echo_token_in_errors = True
    fake.fail("create", Reply(422, {"detail": "bad input", "status": 422}))
    code, text = cli(capsys, "generate", "a cat", "--backend", "rep", "--debug")
    assert code == 1
    assert "bad input Bearer ***" in text  # scrubbed, and --debug's traceback too
    assert token not in text


def test_not_in_a_rejected_token_error(capsys, fake, fake_time, configure, monkeypatch):
    wrong = "r8_WrongTokenWrongTokenWrongToken12345678"
    monkeypatch.setenv("REPLICATE_API_TOKEN", wrong)
    configure()
    fake.echo_token_in_errors = True
    code, text = cli(capsys, "generate", "a cat", "--backend", "rep", "--debug")
    assert code == 1 and "Replicate rejected the token in REPLICATE_API_TOKEN" in text
    assert wrong not in text and fake.token not in text


def test_not_in_reprs_or_exception_chains(fake, fake_time, make_backend, token):
    backend = make_backend()
    fake.fail_always("get", Reply(503, {"detail": "down"}))
    fake.sync = "starting"
    with pytest.raises(BackendError) as info:
        backend.generate(Request("x", seed=1), Steps())
    chain: list[BaseException] = []
    error: BaseException | None = info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    shown = [repr(backend), repr(backend.config), str(backend.__dict__)]
    shown += [repr(e) for e in chain] + [str(e) for e in chain]
    client = ReplicateClient(
        fake.url, token, token_env="REPLICATE_API_TOKEN", pacing=Pacing(), deadline=0.0
    )
    shown.append(repr(client))
    client.close()
    for text in shown:
        assert token not in text, text


def test_not_kept_on_the_backend(make_backend, token):
    # Read from the environment for each prediction, held by nobody afterwards.
    backend = make_backend()
    backend.generate(Request("x", seed=1), Steps())
    assert token not in repr(vars(backend))


def test_a_token_pasted_as_api_token_env_is_refused_without_echo(capsys, configure, token):
    configure(extra=f"api_token_env: {token}")
    code, text = cli(capsys, "config", "validate")
    assert code == 1  # validate's "problems found"
    assert "api_token_env looks like an API token" in text
    assert token not in text


def test_never_sent_to_a_host_that_is_not_replicates(fake, make_backend):
    # An output URL on another host (here "localhost", the same fake under another
    # name): downloaded without the Authorization header.
    fake.file_host = "localhost"
    result = make_backend().generate(Request("x", seed=1), Steps())
    (download,) = fake.downloads
    assert "authorization" not in download.headers
    assert result.image


def test_secret_looking_inputs_are_masked_in_metadata(fake, make_backend):
    backend = make_backend(input={"hf_api_token": "hf_secret", "lora_weights": "owner/lora"})
    result = backend.generate(Request("x", seed=1), Steps())
    assert result.metadata["input"]["hf_api_token"] == "***"
    assert result.metadata["input"]["lora_weights"] == "owner/lora"
    # Sent to Replicate as given: the model needs it.
    assert fake.creates[0].json["input"]["hf_api_token"] == "hf_secret"


def test_backends_report_shows_the_variable_name_only(capsys, configure, token):
    configure()
    code, text = cli(capsys, "backends", "--json")
    assert code == 0 and "REPLICATE_API_TOKEN" in text and token not in text


def test_config_loads_without_the_token(configure, monkeypatch, pm):
    # Loading or validating a config never reads the variable.
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    config = load(collect(pm), configure())
    assert config.backends["rep"].settings.api_token_env == "REPLICATE_API_TOKEN"
