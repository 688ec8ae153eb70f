"""Every way a Replicate generation fails: one line on stderr that names the fix,
and the exit code (2: fix the setup before anything is sent, 1: the work failed)."""

from __future__ import annotations

import socket

import pytest

from imagen_core import BackendError, Request, UsageError
from tests.helpers import one_line, run_cli
from tests.replicate.conftest import Steps
from tests.replicate.fake_replicate import COMMUNITY_VERSION, Reply


@pytest.fixture
def cli(capsys, fake, fake_time, configure, output_dir):
    """Run `imagen generate PROMPT --backend rep` with the block ``extra``."""

    def go(*args: str, extra: str = "", model: str = "black-forest-labs/flux-schnell"):
        configure(model=model, extra=extra)
        return run_cli(capsys, "generate", "a cat", "--backend", "rep", *args)

    go.output_dir = output_dir
    return go


def no_image(output_dir) -> bool:
    return not output_dir.exists() or not any(output_dir.rglob("*.*"))


def test_missing_token_names_the_variable_and_the_block_and_sends_nothing(cli, fake, monkeypatch):
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    code, out, err = cli()
    assert code == 2 and out == ""
    assert one_line(err) == (
        "imagen: set REPLICATE_API_TOKEN in the environment (named by backends.rep.api_token_env)\n"
    )
    assert fake.requests == []


def test_missing_token_of_a_custom_variable(cli, fake, monkeypatch, token):
    code, _, err = cli(extra="api_token_env: TEAM_REPLICATE_TOKEN")
    assert code == 2
    assert err == (
        "imagen: set TEAM_REPLICATE_TOKEN in the environment "
        "(named by backends.rep.api_token_env)\n"
    )
    monkeypatch.setenv("TEAM_REPLICATE_TOKEN", token)
    code, _, _ = cli(extra="api_token_env: TEAM_REPLICATE_TOKEN")
    assert code == 0 and fake.creates[0].headers["authorization"] == f"Bearer {token}"


def test_rejected_token(cli, fake, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_revoked000000000000000000000000000000")
    code, out, err = cli()
    assert code == 1 and out == ""
    assert one_line(err) == (
        "imagen: Replicate rejected the token in REPLICATE_API_TOKEN (HTTP 401: You did not "
        "pass a valid authentication token); set a valid API token from "
        "https://replicate.com/account/api-tokens\n"
    )
    assert len(fake.creates) == 1  # a 401 is not retried
    assert no_image(cli.output_dir)


def test_invalid_input_shows_replicates_detail(cli, fake, token):
    # flux-schnell takes at most 4 steps and only webp/jpg/png: the fake validates
    # the input against the model's schema as the real API does.
    code, _, err = cli("--steps", "8", extra="input: {output_format: gif}")
    assert code == 1
    assert one_line(err) == (
        "imagen: Replicate refused the input for black-forest-labs/flux-schnell: "
        "input.num_inference_steps: Must be less than or equal to 4; input.output_format: "
        'output_format must be one of the following: "webp", "jpg", "png" (HTTP 422)\n'
    )
    assert len(fake.creates) == 1


def test_unknown_official_model(cli, fake, token):
    code, _, err = cli(model="black-forest-labs/flux-schnel")
    assert code == 1
    assert one_line(err) == (
        "imagen: Replicate has no model black-forest-labs/flux-schnel (HTTP 404: The requested "
        "resource could not be found.); check `model` in the backend's block (owner/name, or "
        "owner/name:VERSION for other models)\n"
    )


def test_unknown_version(cli, fake, token):
    code, _, err = cli(model="someone/sdxl-finetune:" + "d" * 64)
    assert code == 1
    assert err == (
        "imagen: Replicate refused the input for someone/sdxl-finetune:" + "d" * 64 + ": "
        "Invalid version or not permitted (HTTP 422)\n"
    )
    assert fake.creates[0].json["version"] == "d" * 64


def test_out_of_credit(cli, fake, token):
    fake.fail(
        "create",
        Reply(
            402,
            {"title": "Payment required", "detail": "You have run out of credit", "status": 402},
            {"Content-Type": "application/problem+json"},
        ),
    )
    code, _, err = cli()
    assert code == 1
    assert one_line(err) == (
        "imagen: Replicate refused the prediction: You have run out of credit (HTTP 402); "
        "add credit at https://replicate.com/account/billing\n"
    )


def test_server_error_on_create_is_reported_not_retried(cli, fake, fake_time, token):
    fake.fail("create", Reply(500, {"detail": "Internal server error", "status": 500}))
    code, _, err = cli()
    assert code == 1
    assert len(fake.creates) == 1 and fake_time.sleeps == []
    assert one_line(err) == (
        "imagen: Replicate failed while creating a prediction of black-forest-labs/flux-schnell "
        "(HTTP 500: Internal server error); not retried, so that nothing is paid twice: check "
        "https://replicate.com/predictions before trying again\n"
    )


@pytest.mark.parametrize(
    ("outcome", "error", "message"),
    [
        (
            "failed",
            "All generated images contained NSFW content. Try running it again with a "
            "different prompt.",
            "failed: All generated images contained NSFW content. Try running it again with "
            "a different prompt. (logs: https://replicate.com/p/{id})",
        ),
        ("failed", None, "failed without an error text (logs: https://replicate.com/p/{id})"),
        (
            "canceled",
            None,
            "was canceled (from the web page or the API, or at its Cancel-After deadline): "
            "https://replicate.com/p/{id}",
        ),
        (
            "aborted",
            None,
            "was aborted before it started: its Cancel-After deadline passed while it waited "
            "for a machine (not charged); try again, or raise timeout_s",
        ),
    ],
)
@pytest.mark.parametrize("sync", ["succeeded", "starting"])
def test_unsuccessful_predictions_name_their_error_and_id(
    cli, fake, token, outcome, error, message, sync
):
    fake.sync, fake.outcome, fake.error = sync, outcome, error
    code, _, err = cli()
    (pid,) = fake.predictions
    assert code == 1
    assert one_line(err) == f"imagen: Replicate prediction {pid} {message.format(id=pid)}\n"
    assert fake.downloads == [] and fake.cancels == []  # final: nothing to cancel
    assert no_image(cli.output_dir)


@pytest.mark.parametrize("status", [404, 403])
def test_expired_output_files(cli, fake, token, status):
    fake.files_expired = status
    code, _, err = cli()
    (pid,) = fake.predictions
    assert code == 1
    assert one_line(err) == (
        f"imagen: Replicate's output file is gone (HTTP {status} for "
        f"{fake.url}/files/{pid}/out-0.webp): output files expire an hour after the "
        "prediction; run the generation again\n"
    )
    assert len(fake.downloads) == 1  # a 404/403 is final, not retried


def test_output_removed(cli, fake, token):
    fake.data_removed = True
    code, _, err = cli()
    (pid,) = fake.predictions
    assert code == 1
    assert one_line(err) == (
        f"imagen: Replicate prediction {pid} succeeded but has no output file (its data was "
        f"removed): https://replicate.com/p/{pid}\n"
    )


def test_unreachable_api(capsys, fake_time, configure, token):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(base_url=f"http://127.0.0.1:{port}")
    code, _, err = run_cli(capsys, "generate", "a cat", "--backend", "rep")
    assert code == 1
    assert one_line(err) == (
        f"imagen: Replicate at http://127.0.0.1:{port} is not reachable while creating a "
        "prediction of black-forest-labs/flux-schnell (connection refused); check the "
        "network, or base_url in the backend's block\n"
    )
    assert fake_time.sleeps == []  # a create is never retried on a network error


def test_unreachable_api_is_unavailable_to_the_worker(fake_time, configure, token):
    from imagen_core import BackendUnavailable, Session

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(BackendUnavailable):
        Session().generate(Request("a cat", backend="rep"))


def test_an_answer_that_is_not_a_prediction(cli, fake, token):
    fake.fail("create", Reply(201, b"<html>captive portal</html>", {"Content-Type": "text/html"}))
    code, _, err = cli()
    assert code == 1
    assert one_line(err) == (
        "imagen: Replicate answered HTTP 201 with something that is not a prediction: "
        "<html>captive portal</html>; check base_url\n"
    )


def test_cfg_that_is_not_a_number_is_a_usage_error(make_backend, fake):
    with pytest.raises(UsageError, match=r"request.extra\['cfg'\] must be a number, got 'high'"):
        make_backend(model="black-forest-labs/flux-dev").generate(
            Request("x", extra={"cfg": "high"}), Steps()
        )
    assert fake.requests == []


def test_community_model_without_version_is_not_found(make_backend):
    with pytest.raises(BackendError, match="Replicate has no model someone/sdxl-finetune"):
        make_backend(model="someone/sdxl-finetune").generate(Request("x", seed=1), Steps())
    assert COMMUNITY_VERSION  # the same model runs by version: see test_generate
