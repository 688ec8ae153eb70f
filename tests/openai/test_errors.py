"""Every way an OpenAI generation fails: one line on stderr that names the fix,
and the exit code (2: fix the setup before anything is sent, 1: the work failed)."""

from __future__ import annotations

import re
import socket

import pytest

from imagen_core import BackendError, Request
from tests.fake_http import Steps
from tests.helpers import one_line, run_cli
from tests.openai.fake_openai import Reply, error


@pytest.fixture
def cli(capsys, fake, fake_time, configure, output_dir):
    """Run `imagen generate PROMPT --backend oa` with the block ``extra``."""

    def go(*args: str, extra: str = "", model: str = "gpt-image-1", prompt: str = "a cat"):
        configure(model=model, extra=extra)
        return run_cli(capsys, "generate", prompt, "--backend", "oa", *args)

    go.output_dir = output_dir
    return go


def no_image(output_dir) -> bool:
    return not output_dir.exists() or not any(output_dir.rglob("*.*"))


def test_missing_key_names_the_variable_and_the_block_and_sends_nothing(cli, fake, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, out, err = cli()
    assert code == 2 and out == ""
    assert one_line(err) == (
        "imagen: set OPENAI_API_KEY in the environment (named by backends.oa.api_key_env)\n"
    )
    assert fake.requests == []


def test_rejected_key(cli, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-revoked0000000000000000000000wxyz")
    code, out, err = cli()
    assert code == 1 and out == ""
    assert one_line(err) == (
        "imagen: the server at http://127.0.0.1:{port} rejected the key in OPENAI_API_KEY "
        "(HTTP 401: Incorrect API key provided: sk-proj-*****************************wxyz. You "
        "can find your API key at https://platform.openai.com/account/api-keys.); check "
        "api_key_env\n".replace("{port}", str(fake.port))
    )
    assert len(fake.generations) == 1  # a 401 is not retried
    assert no_image(cli.output_dir)


def test_rejected_key_on_openai_links_the_keys_page(fake, make_backend, monkeypatch):
    backend = make_backend()
    monkeypatch.setattr(type(backend.config), "is_openai", property(lambda self: True))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong0000000000000000abcd")
    with pytest.raises(BackendError) as info:
        backend.generate(Request("x"), Steps())
    assert str(info.value).startswith("OpenAI rejected the key in OPENAI_API_KEY (HTTP 401: ")
    assert str(info.value).endswith("; set a valid key from https://platform.openai.com/api-keys")


def test_a_server_that_wants_a_key_when_none_is_sent(cli, fake):
    code, _, err = cli(extra="api_key_env: null")
    assert code == 1
    assert one_line(err).startswith(
        f"imagen: the server at http://127.0.0.1:{fake.port} wants an API key (HTTP 401: You "
        "didn't provide an API key."
    )
    assert err.endswith(
        "; set api_key_env in the backend's block to the environment variable that holds it\n"
    )
    assert "authorization" not in fake.generations[0].headers


def test_quota_used_up_is_not_retried(cli, fake, fake_time, key):
    fake.quota_exhausted = True
    code, _, err = cli()
    assert code == 1
    assert one_line(err) == (
        "imagen: the server at http://127.0.0.1:{port} refused the request: You exceeded your "
        "current quota, please check your plan and billing details. For more information on "
        "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-"
        "errors. (HTTP 429 insufficient_quota); add credit or raise the budget\n"
    ).replace("{port}", str(fake.port))
    assert len(fake.generations) == 1 and fake_time.sleeps == []


def test_moderation_refusal_names_the_stage_and_the_setting(cli, fake, key):
    code, _, err = cli(prompt="a FORBIDDEN scene")
    assert code == 1
    line = one_line(err)
    assert line.startswith(
        f"imagen: the server at http://127.0.0.1:{fake.port}'s safety system refused the "
        "request (moderation_blocked at the input stage: violence; request req_"
    )
    assert line.endswith("); reword the prompt, or set moderation: low in the backend's block\n")
    assert len(fake.generations) == 1 and no_image(cli.output_dir)


def test_moderation_low_already_is_not_suggested_again(cli, fake, key):
    _, _, err = cli(extra="moderation: low", prompt="FORBIDDEN")
    assert one_line(err).endswith("); reword the prompt\n")


def test_dall_e_content_policy_refusal(cli, fake, key):
    code, _, err = cli(model="dall-e-3", prompt="FORBIDDEN")
    assert code == 1
    assert "safety system refused the request (content_policy_violation; request req_" in err
    assert one_line(err).endswith("); reword the prompt\n")  # DALL-E has no moderation key


def test_invalid_size_of_a_compatible_server(cli, fake, key, monkeypatch):
    fake.fail(
        "generations",
        error(400, "Invalid value: '1254x836'. Supported values are: '1024x1024', "
              "'1024x1536', '1536x1024', and 'auto'.", "invalid_request_error", "size",
              "invalid_value"),
    )  # fmt: skip
    code, _, err = cli("--size", "1254x836", model="my-proxy-model")
    assert code == 1
    assert one_line(err) == (
        f"imagen: the server at http://127.0.0.1:{fake.port} refused the size 1254x836 for "
        "my-proxy-model (HTTP 400: Invalid value: '1254x836'. Supported values are: "
        "'1024x1024', '1024x1536', '1536x1024', and 'auto'.); ask for a size it takes with "
        "--size\n"
    )


def test_unknown_model(cli, fake, key):
    code, _, err = cli(model="gpt-image-9")
    assert code == 1
    assert one_line(err) == (
        f"imagen: the server at http://127.0.0.1:{fake.port} has no model gpt-image-9, or the "
        "key may not use it (HTTP 404: The model `gpt-image-9` does not exist or you do not "
        "have access to it.); check model in the backend's block\n"
    )


def test_base_url_without_v1(cli, fake, key, configure, capsys):
    configure(base_url=fake.url)
    code, _, err = run_cli(capsys, "generate", "a cat", "--backend", "oa")
    assert code == 1
    assert one_line(err) == (
        f"imagen: the server at http://127.0.0.1:{fake.port} has no {fake.url}/images/"
        "generations (HTTP 404); check base_url in the backend's block: the API root with its "
        "/v1, e.g. http://localhost:8080/v1\n"
    )


def test_unknown_parameter_from_extra_body(cli, fake, key):
    code, _, err = cli(extra="extra_body: {style: vivid}")
    assert code == 1
    assert one_line(err) == (
        f"imagen: the server at http://127.0.0.1:{fake.port} refused the request for "
        "gpt-image-1 (HTTP 400 unknown_parameter, param style): Unknown parameter: 'style'.; "
        "gpt-image-1 does not take style: remove it from the backend's block (extra_body, "
        "request_fields)\n"
    )


def test_unverified_organization(fake, make_backend, monkeypatch):
    backend = make_backend()
    monkeypatch.setattr(type(backend.config), "is_openai", property(lambda self: True))
    fake.fail(
        "generations",
        error(403, "Your organization must be verified to use the model `gpt-image-1`. Please "
              "go to: https://platform.openai.com/settings/organization/general and click on "
              "Verify Organization.", "invalid_request_error"),
    )  # fmt: skip
    with pytest.raises(BackendError) as info:
        backend.generate(Request("x"), Steps())
    assert str(info.value).endswith(
        "(HTTP 403: Your organization must be verified to use the model `gpt-image-1`. Please go "
        "to: https://platform.openai.com/settings/organization/general and click on Verify "
        "Organization.); the GPT image models need a verified organization: "
        "https://platform.openai.com/settings/organization/general"
    )
    assert str(info.value).startswith("OpenAI refused access to gpt-image-1 (HTTP 403: ")


def test_a_compatible_servers_plain_error_shape(cli, fake, key):
    fake.fail(
        "generations", *[Reply(500, {"error": "server_error", "message": "CUDA out of memory"})] * 6
    )
    code, _, err = cli()
    assert code == 1
    assert re.fullmatch(
        f"imagen: the server at http://127.0.0.1:{fake.port} is failing \\(HTTP 500: CUDA out of "
        "memory; request req_[0-9a-f]{32}\\), still after 5 retries; try again later\n",
        one_line(err),
    )


def test_an_answer_that_is_not_an_images_response(cli, fake, key):
    fake.fail(
        "generations", Reply(200, b"<html>captive portal</html>", {"Content-Type": "text/html"})
    )
    code, _, err = cli()
    assert code == 1
    assert one_line(err) == (
        f"imagen: the server at http://127.0.0.1:{fake.port} answered HTTP 200 without an image "
        "(no data[0]): <html>captive portal</html>; check base_url and model\n"
    )


def test_an_answer_that_is_not_an_image(cli, fake, key):
    fake.fail("generations", Reply(200, {"created": 1, "data": [{"b64_json": "aGVsbG8="}]}))
    code, _, err = cli()
    assert code == 1
    assert one_line(err) == (
        f"imagen: the server at http://127.0.0.1:{fake.port}'s answer is not an image (declared "
        "nothing); is model an image model?\n"
    )


def test_unreachable_server_is_retried_then_named(capsys, fake_time, configure, key):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(base_url=f"http://127.0.0.1:{port}/v1")
    code, _, err = run_cli(capsys, "generate", "a cat", "--backend", "oa")
    assert code == 1
    assert one_line(err) == (
        f"imagen: the server at http://127.0.0.1:{port} is not reachable while making the image "
        "(connection refused); check the network, or base_url in the backend's block\n"
    )
    # Never sent, so safe to try again: 5 retries with backoff.
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_the_key_never_reaches_a_message(cli, fake, key):
    fake.fail("generations", error(400, f"echo: Bearer {key}", "invalid_request_error"))
    code, _, err = cli()
    assert code == 1 and key not in err and "echo: Bearer ***" in err
