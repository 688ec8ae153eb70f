"""Which failures `imagen worker` runs again. The Images API is one synchronous
request: an answer of 408, 409, 429 or 5xx carries no image and no usage, so a
second request cannot pay for an image twice (transient, once the client's own
retries are spent); a server that cannot be reached at all is unavailable (the
worker waits for it); a used-up quota, a refusal of the request, a gateway's
timeout and a connection lost or a deadline passed after the request was sent
(the image may be made and billed) fail the job at once, sent once."""

from __future__ import annotations

import pytest
import requests

from imagen_core import BackendError, Request
from imagen_core.errors import is_transient, is_unavailable
from tests.fake_http import Steps
from tests.helpers import closed_port
from tests.openai.fake_openai import FORBIDDEN, Reply, error, rate_limited

QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)


def _failure(make_backend, request: Request | None = None, **settings) -> BackendError:
    with pytest.raises(BackendError) as info:
        make_backend(**settings).generate(request or Request("a cat"), Steps())
    return info.value


def _as_openai(backend_type, monkeypatch) -> None:
    monkeypatch.setattr(backend_type, "is_openai", property(lambda self: True))


def server_error(status: int, headers: dict[str, str] | None = None) -> Reply:
    return error(
        status,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        headers=headers,
    )


def test_rate_limited_for_good_is_transient(fake, fake_time, make_backend):
    fake.fail("generations", *[rate_limited(retry_after="1")] * 6)
    error_ = _failure(make_backend)
    assert len(fake.generations) == 6  # the client's own retries first
    assert is_transient(error_) and not is_unavailable(error_)
    assert "is rate limiting us (HTTP 429: Rate limit reached for gpt-image-1" in str(error_)


@pytest.mark.parametrize(
    "code", ["insufficient_quota", "billing_hard_limit_reached", "credit_balance_exhausted"]
)
def test_a_used_up_quota_fails_at_once_naming_billing(
    fake, fake_time, make_backend, monkeypatch, code
):
    backend = make_backend()
    _as_openai(type(backend.config), monkeypatch)
    fake.fail("generations", error(429, QUOTA, "insufficient_quota", None, code))
    with pytest.raises(BackendError) as info:
        backend.generate(Request("a cat"), Steps())
    assert len(fake.generations) == 1 and fake_time.sleeps == []
    assert not is_transient(info.value)
    assert str(info.value).endswith(
        f"(HTTP 429 {code}); add credit or raise the budget at "
        "https://platform.openai.com/settings/organization/billing"
    )


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_for_good_are_transient(fake, fake_time, make_backend, status):
    fake.fail("generations", *[server_error(status)] * 6)
    error_ = _failure(make_backend)
    assert len(fake.generations) == 6
    assert is_transient(error_) and not is_unavailable(error_)
    assert f"is failing (HTTP {status}: The server had an error" in str(error_)


@pytest.mark.parametrize("status", [504, 524])
def test_a_gateway_timeout_is_sent_once_and_final(fake, fake_time, make_backend, status):
    # The gateway gave up waiting; the server behind it may still make and bill the image.
    fake.fail(
        "generations", Reply(status, b"<html>Gateway Timeout</html>", {"Content-Type": "text/html"})
    )
    error_ = _failure(make_backend)
    assert len(fake.generations) == 1 and fake_time.sleeps == []
    assert not is_transient(error_)
    assert (
        f"gateway gave up waiting for the image (HTTP {status}: <html>Gateway Timeout</html>; "
        "request req_"
    ) in str(error_)
    assert str(error_).endswith(
        "not retried, as the image may still have been made and billed: check the server "
        "before trying again"
    )


def test_a_5xx_the_server_says_not_to_retry_is_final(fake, fake_time, make_backend):
    fake.fail("generations", server_error(503, {"x-should-retry": "false"}))
    error_ = _failure(make_backend)
    assert len(fake.generations) == 1 and not is_transient(error_)


@pytest.mark.parametrize(
    ("reply", "prompt", "fix"),
    [
        (None, f"a {FORBIDDEN} scene", "; reword the prompt, or set moderation: low in"),
        (
            error(400, "Invalid value: 'ultra'. Supported values are: 'low', 'medium', 'high' "
                  "and 'auto'.", "invalid_request_error", "quality", "invalid_value"),
            "a cat",
            "; change quality (the request's options, or extra_body and request_fields in the "
            "backend's block)",
        ),
        (
            error(401, "Incorrect API key provided: sk-proj-****wxyz.", "invalid_request_error",
                  None, "invalid_api_key"),
            "a cat",
            "; check api_key_env",
        ),
        (
            error(403, "You are not allowed to use this model.", "permission_denied"),
            "a cat",
            "; check that the key's project may use this model",
        ),
        (
            error(404, "The model `gpt-image-1` does not exist or you do not have access to it.",
                  "invalid_request_error", None, "model_not_found"),
            "a cat",
            "; check model in the backend's block",
        ),
    ],
)  # fmt: skip
def test_refusals_fail_at_once_naming_the_fix(fake, fake_time, make_backend, reply, prompt, fix):
    if reply is not None:
        fake.fail("generations", reply)
    error_ = _failure(make_backend, Request(prompt))
    assert len(fake.generations) == 1 and fake_time.sleeps == []
    assert not is_transient(error_) and not is_unavailable(error_)
    assert fix in str(error_) and "\n" not in str(error_)


def test_a_refused_connection_is_unavailable(fake_time, make_backend):
    error_ = _failure(make_backend, base_url=f"http://127.0.0.1:{closed_port()}/v1")
    assert is_unavailable(error_)
    assert "(connection refused); check the network, or base_url" in str(error_)


def test_a_connect_timeout_is_unavailable(fake, fake_time, make_backend, monkeypatch):
    def never_connects(self, method, url, **kwargs):
        raise requests.ConnectTimeout("HTTPConnectionPool: Max retries exceeded (connect timeout)")

    monkeypatch.setattr(requests.Session, "request", never_connects)
    error_ = _failure(make_backend)
    assert is_unavailable(error_) and "(no answer in time)" in str(error_)
    assert len(fake_time.sleeps) == 5  # never sent: retried


def test_a_read_timeout_after_sending_is_final(fake, fake_time, make_backend, monkeypatch):
    sent: list[str] = []

    def slow(self, method, url, **kwargs):
        sent.append(url)
        raise requests.ReadTimeout("HTTPConnectionPool: Read timed out. (read timeout=600)")

    monkeypatch.setattr(requests.Session, "request", slow)
    error_ = _failure(make_backend)
    # The request reached the server: the image may be made and billed.
    assert len(sent) == 1 and not is_transient(error_) and not is_unavailable(error_)
    assert str(error_).endswith("not retried, as the image may have been made and billed")


def test_the_deadline_passing_while_the_image_is_made_is_final(fake, fake_time, make_backend):
    fake.hold()
    error_ = _failure(make_backend, timeout_s=2.0)
    assert "did not answer within timeout_s=2s" in str(error_)
    assert not is_transient(error_)


def test_a_dall_e_image_host_that_cannot_be_reached_is_final(
    fake, fake_time, make_backend, monkeypatch
):
    send = requests.Session.request

    def no_image_host(self, method, url, **kwargs):
        if "/files/" in url:
            raise requests.ConnectionError(
                "HTTPConnectionPool: Max retries exceeded (Caused by NewConnectionError: "
                "[Errno 111] Connection refused)"
            )
        return send(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", no_image_host)
    error_ = _failure(
        make_backend,
        Request("x", width=256, height=256),
        model="dall-e-2",
        extra_body={"response_format": None},
    )
    # The image is made and billed: running the job again would pay twice.
    assert not is_transient(error_) and not is_unavailable(error_)
    assert "the image was made and may be billed" in str(error_)
