"""Retries: 429 and 5xx on polls and downloads, with backoff honouring Retry-After,
bounded in number, in length and by the deadline; the paid create POST only on 429."""

from __future__ import annotations

import email.utils
import time

import pytest

from imagen_core import BackendError, Request
from tests.replicate.conftest import Steps
from tests.replicate.fake_replicate import Reply

THROTTLED = {"detail": "Request was throttled. Expected available in 1 second.", "status": 429}


def test_create_throttled_with_retry_after_waits_that_long_and_creates_once(
    fake, fake_time, make_backend
):
    fake.fail("create", Reply(429, THROTTLED, {"Retry-After": "2"}))
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.creates) == 2 and fake_time.sleeps == [2.0]
    assert fake.creates[0].body == fake.creates[1].body  # the same prediction, asked again
    assert len(fake.predictions) == 1  # and only one exists, so only one is paid
    assert result.metadata["prediction_id"] in fake.predictions


def test_retry_after_missing_then_the_body_says_when(fake, fake_time, make_backend):
    fake.fail(
        "create",
        Reply(429, THROTTLED),
        Reply(429, {"detail": "Your rate limit resets in ~30s.", "status": 429}),
        Reply(429, {"detail": "throttled", "retry_after": 4, "status": 429}),
        Reply(429, {"detail": "throttled", "status": 429}),  # nothing said: backoff
    )
    make_backend().generate(Request("x", seed=1), Steps())
    assert fake_time.sleeps == [1.0, 30.0, 4.0, 8.0]  # the 4th retry backs off 1 * 2**3


def test_retry_after_as_an_http_date(fake, fake_time, make_backend):
    when = email.utils.formatdate(time.time() + 7, usegmt=True)
    fake.fail("get", Reply(503, {"detail": "busy"}, {"Retry-After": when}))
    fake.sync = "starting"
    fake.polls_to_finish = 1
    make_backend().generate(Request("x", seed=1), Steps())
    retry = fake_time.sleeps[1]  # after the first poll interval
    assert 5.0 <= retry <= 7.0


def test_create_throttled_too_long_gives_up_after_the_budget(fake, fake_time, make_backend):
    fake.fail("create", *[Reply(429, THROTTLED, {"Retry-After": "120"})] * 10)
    with pytest.raises(BackendError) as info:
        make_backend(timeout_s=3600.0).generate(Request("x", seed=1), Steps())
    assert len(fake.creates) == 6  # the first try and Pacing.retries = 5
    assert fake_time.sleeps == [60.0] * 5  # Retry-After capped at retry_max_s
    assert fake.predictions == {}
    assert str(info.value) == (
        "Replicate is rate limiting us while creating a prediction of "
        "black-forest-labs/flux-schnell (HTTP 429: Request was throttled. Expected available "
        "in 1 second.), still after 5 retries; wait a minute and try again"
    )
    # Nothing was made: the worker may run the job again later.
    assert info.value.transient


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_create_is_never_retried_on_server_errors(fake, fake_time, make_backend, status):
    fake.fail("create", Reply(status, {"detail": "upstream trouble", "status": status}))
    with pytest.raises(BackendError, match=f"HTTP {status}: upstream trouble") as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.creates) == 1 and fake_time.sleeps == []
    # The prediction may exist (and cost): the worker must not run it again either.
    assert not info.value.transient


def test_polls_are_retried_on_5xx_with_backoff(fake, fake_time, make_backend):
    fake.sync = "starting"
    fake.polls_to_finish = 1
    fake.fail("get", Reply(503, {"detail": "busy"}), Reply(502, b"Bad Gateway"))
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.polls) == 3
    assert fake_time.sleeps == [0.5, 1.0, 2.0]  # poll interval, then two backoffs
    assert result.metadata["status"] == "succeeded"


def test_polls_failing_for_good_go_on_until_the_deadline_then_cancel(fake, fake_time, make_backend):
    # The prediction exists and runs on: a poll failing past its retries is no
    # reason to give it up before timeout_s.
    fake.sync = "starting"
    fake.fail_always("get", Reply(503, {"detail": "Service Unavailable", "status": 503}))
    with pytest.raises(BackendError) as info:
        make_backend(timeout_s=120.0).generate(Request("x", seed=1), Steps())
    (pid,) = fake.predictions
    assert len(fake.polls) > 6  # more than one poll's own retries
    assert fake_time.sleeps[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert fake_time.now >= 1000.0 + 120.0  # the fake clock starts at 1000
    assert str(info.value) == (
        f"Replicate is failing while polling prediction {pid} (HTTP 503: Service Unavailable); "
        "see https://replicate.com/status and try again later"
    )
    # It may still run and be paid for: cancelled.
    assert [c.path for c in fake.cancels] == [f"/v1/predictions/{pid}/cancel"]
    assert fake.predictions[pid].data["status"] == "canceled"


def test_polls_that_recover_before_the_deadline_get_the_image(fake, fake_time, make_backend):
    fake.sync = "starting"
    fake.polls_to_finish = 1
    fake.fail("get", *[Reply(503, {"detail": "busy"})] * 8)  # past one poll's 5 retries
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.polls) == 9 and fake.cancels == []
    assert result.metadata["status"] == "succeeded"


def test_retries_stop_at_the_deadline(fake, fake_time, make_backend):
    fake.sync = "starting"
    fake.fail_always("get", Reply(503, {"detail": "busy"}, {"Retry-After": "30"}))
    with pytest.raises(BackendError, match="HTTP 503: busy"):
        make_backend(timeout_s=10.0).generate(Request("x", seed=1), Steps())
    assert 30.0 not in fake_time.sleeps  # waiting would pass the deadline
    assert len(fake.cancels) == 1


def test_downloads_are_retried_on_429_and_5xx(fake, fake_time, make_backend):
    fake.fail(
        "file",
        Reply(429, b"slow down", {"Retry-After": "3"}),
        Reply(500, b"oops"),
    )
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.downloads) == 3 and fake_time.sleeps == [3.0, 2.0]
    assert result.image.startswith(b"RIFF")


def test_downloads_give_up_after_the_budget(fake, fake_time, make_backend):
    fake.fail("file", *[Reply(503, b"down")] * 10)
    with pytest.raises(BackendError, match=r"while downloading the output \(HTTP 503: down\)"):
        make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.downloads) == 6
    assert fake.cancels == []  # the prediction had finished: nothing to cancel


def test_cancel_is_retried_briefly(fake, fake_time, make_backend):
    fake.sync = "starting"
    fake.outcome = "running"
    fake.fail("cancel", Reply(503, {"detail": "busy"}))
    with pytest.raises(BackendError, match="did not finish within timeout_s=5s"):
        make_backend(timeout_s=5.0).generate(Request("x", seed=1), Steps())
    assert len(fake.cancels) == 2
    assert fake.predictions[next(iter(fake.predictions))].data["status"] == "canceled"
