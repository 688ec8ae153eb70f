"""Retries as the official SDK makes them: 408, 409, 429 and 5xx (but not a
gateway's timeout, after which the image may still be made and billed), with
backoff honouring retry-after-ms and retry-after, x-should-retry obeyed, bounded
in number, in length and by the deadline."""

from __future__ import annotations

import email.utils
import time

import pytest

from imagen_core import BackendError, Request
from tests.fake_http import HUNG_UP, Steps
from tests.openai.fake_openai import Reply, error, rate_limited


def server_error(status: int = 500, headers: dict[str, str] | None = None) -> Reply:
    return error(
        status,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        headers=headers,
    )


def test_rate_limited_with_retry_after_waits_that_long(fake, fake_time, make_backend):
    fake.fail("generations", rate_limited(retry_after="3"))
    result = make_backend().generate(Request("x"), Steps())
    assert len(fake.generations) == 2 and fake_time.sleeps == [3.0]
    assert fake.generations[0].body == fake.generations[1].body  # the same request again
    assert result.image.startswith(b"\x89PNG")


def test_retry_after_ms_wins_then_the_date_then_backoff(fake, fake_time, make_backend):
    when = email.utils.formatdate(time.time() + 7, usegmt=True)
    fake.fail(
        "generations",
        Reply(429, rate_limited().body, {"retry-after-ms": "1500", "retry-after": "9"}),
        Reply(429, rate_limited().body, {"retry-after": when}),
        rate_limited(retry_after=None),
        server_error(503),
    )
    make_backend().generate(Request("x"), Steps())
    assert fake_time.sleeps[0] == 1.5
    assert 5.0 <= fake_time.sleeps[1] <= 7.0
    assert fake_time.sleeps[2:] == [4.0, 8.0]  # nothing asked: 1 * 2**2, then 1 * 2**3
    assert len(fake.generations) == 5


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503])
def test_server_errors_are_retried_with_backoff(fake, fake_time, make_backend, status):
    fake.fail("generations", server_error(status), server_error(status))
    make_backend().generate(Request("x"), Steps())
    assert len(fake.generations) == 3 and fake_time.sleeps == [1.0, 2.0]


def test_x_should_retry_overrides_the_status(fake, fake_time, make_backend):
    fake.fail("generations", server_error(500, {"x-should-retry": "false"}))
    with pytest.raises(BackendError, match=r"is failing \(HTTP 500: The server had an error"):
        make_backend().generate(Request("x"), Steps())
    assert len(fake.generations) == 1 and fake_time.sleeps == []

    fake.fail(
        "generations",
        error(400, "Try again.", "invalid_request_error", headers={"x-should-retry": "true"}),
    )
    make_backend().generate(Request("x"), Steps())
    assert len(fake.generations) == 3 and fake_time.sleeps == [1.0]


def test_client_errors_are_not_retried(fake, fake_time, make_backend):
    with pytest.raises(BackendError, match="has no model my-model"):
        make_backend(model="my-model").generate(Request("x"), Steps())
    assert len(fake.generations) == 1 and fake_time.sleeps == []


def test_rate_limited_too_long_gives_up_after_the_budget(fake, fake_time, make_backend):
    fake.fail("generations", *[rate_limited(retry_after="120")] * 10)
    with pytest.raises(BackendError) as info:
        make_backend(timeout_s=3600.0).generate(Request("x"), Steps())
    assert len(fake.generations) == 6  # the first try and Pacing.retries = 5
    assert fake_time.sleeps == [60.0] * 5  # Retry-After capped at retry_max_s
    assert str(info.value) == (
        f"the server at http://127.0.0.1:{fake.port} is rate limiting us (HTTP 429: Rate limit "
        "reached for gpt-image-1 in organization org-fake on images per minute (IPM): Limit 5, "
        "Used 5, Requested 1. Please try again in 12s.), still after 5 retries; wait a minute "
        "and try again, or raise the limits"
    )


def test_retries_stop_at_the_deadline(fake, fake_time, make_backend):
    fake.fail("generations", server_error(503, {"retry-after": "30"}))
    with pytest.raises(BackendError, match="HTTP 503"):
        make_backend(timeout_s=10.0).generate(Request("x"), Steps())
    assert fake_time.sleeps == []  # waiting would pass the deadline
    assert len(fake.generations) == 1


def test_a_dall_e_download_is_retried(fake, fake_time, make_backend):
    fake.fail("file", Reply(503, b"busy", {"Retry-After": "2"}))
    result = make_backend(model="dall-e-2", extra_body={"response_format": None}).generate(
        Request("x", width=256, height=256), Steps()
    )
    assert len(fake.downloads) == 2 and fake_time.sleeps == [2.0]
    assert result.image.startswith(b"\x89PNG")


def test_an_expired_image_url(fake, fake_time, make_backend):
    fake.fail("file", Reply(404, b"<Error><Code>BlobNotFound</Code></Error>"))
    with pytest.raises(BackendError) as info:
        make_backend(model="dall-e-2", extra_body={"response_format": None}).generate(
            Request("x", width=256, height=256), Steps()
        )
    assert str(info.value) == (
        f"the server at http://127.0.0.1:{fake.port} made the image but its URL answered HTTP "
        "404 (<Error><Code>BlobNotFound</Code></Error>); image URLs expire after an hour: run "
        "the generation again"
    )


@pytest.mark.parametrize(
    "reply",
    [
        Reply(504, b"<html>504 Gateway Time-out</html>"),
        Reply(524, b"<html>A timeout occurred</html>"),
        Reply(HUNG_UP),  # the connection lost mid-answer
    ],
    ids=["504", "524", "hung-up"],
)
def test_a_dall_e_download_is_retried_where_the_post_is_not(fake, fake_time, make_backend, reply):
    # Unlike the POST that makes (and bills) the image, fetching it again is free.
    fake.fail("file", reply)
    result = make_backend(model="dall-e-2", extra_body={"response_format": None}).generate(
        Request("x", width=256, height=256), Steps()
    )
    assert len(fake.downloads) == 2 and len(fake.generations) == 1
    assert result.image.startswith(b"\x89PNG")


def test_a_connection_lost_during_the_post_is_still_not_retried(fake, fake_time, make_backend):
    fake.fail("generations", Reply(HUNG_UP))
    with pytest.raises(BackendError, match="not retried, as the image may have been made"):
        make_backend().generate(Request("x"), Steps())
    assert len(fake.generations) == 1
