"""Retries: 429 and 5xx on status polls, result fetches and downloads, with backoff
honouring Retry-After, bounded in number, in length and by the deadline; the paid
submit only on 429 and on errors of fal's ingress (no x-fal-request-id)."""

from __future__ import annotations

import email.utils
import time

import pytest

from imagen_core import BackendError, Request
from imagen_core.errors import is_transient
from tests.fal.conftest import Steps
from tests.fal.fake_fal import Reply

THROTTLED = {"detail": "Rate limit exceeded"}


def test_submit_throttled_waits_as_told_and_queues_once(fake, fake_time, make_backend):
    fake.queue_polls = 0
    fake.progress_polls = 0
    fake.fail("submit", Reply(429, THROTTLED, {"Retry-After": "2"}))
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.submits) == 2 and fake_time.sleeps[0] == 2.0
    assert fake.submits[0].body == fake.submits[1].body
    assert list(fake.queued) == [result.metadata["request_id"]]  # one request, one bill


def test_retry_after_missing_then_the_body_or_backoff(fake, fake_time, make_backend):
    fake.queue_polls = 0
    fake.progress_polls = 0
    fake.fail(
        "submit",
        Reply(429, {"detail": "Too many requests, retry in 3 seconds"}),
        Reply(429, {"detail": "slow down", "retry_after": 4}),
        Reply(429, THROTTLED),  # nothing said: backoff 1 * 2**2
    )
    make_backend().generate(Request("x", seed=1), Steps())
    assert fake_time.sleeps[:3] == [3.0, 4.0, 4.0]


def test_retry_after_as_an_http_date(fake, fake_time, make_backend):
    when = email.utils.formatdate(time.time() + 7, usegmt=True)
    fake.fail("status", Reply(503, {"detail": "busy"}, {"Retry-After": when}))
    make_backend().generate(Request("x", seed=1), Steps())
    assert 5.0 <= fake_time.sleeps[0] <= 7.0


def test_submit_throttled_for_good_gives_up_after_the_budget(fake, fake_time, make_backend):
    fake.fail("submit", *[Reply(429, THROTTLED, {"Retry-After": "120"})] * 10)
    with pytest.raises(BackendError) as info:
        make_backend(timeout_s=3600.0).generate(Request("x", seed=1), Steps())
    assert len(fake.submits) == 6  # the first try and Pacing.retries = 5
    assert fake_time.sleeps == [60.0] * 5  # Retry-After capped at retry_max_s
    assert fake.queued == {}
    assert str(info.value) == (
        "fal is rate limiting us while submitting to fal-ai/flux/schnell (HTTP 429: Rate limit "
        "exceeded), still after 5 retries; wait a minute and try again"
    )
    assert is_transient(info.value)  # nothing was queued: the worker tries again later


@pytest.mark.parametrize("status", [502, 503, 504])
def test_submit_retries_errors_of_the_ingress(fake, fake_time, make_backend, status):
    # No x-fal-request-id: the error came from in front of the queue, so nothing
    # was queued (fal's own client retries these too).
    page = f"<html><center><h1>{status}</h1></center><hr><center>nginx</center></html>"
    fake.fail("submit", Reply(status, page.encode(), {"Content-Type": "text/html"}))
    make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.submits) == 2 and len(fake.queued) == 1


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (500, {"x-fal-request-id": "abc"}, {"detail": "upstream trouble"}),
        (502, {"x-fal-request-id": "abc"}, {"detail": "upstream trouble"}),
        (503, {}, {"detail": "upstream trouble"}),  # not nginx's page: maybe fal's own
    ],
)
def test_submit_is_never_retried_when_fal_may_have_queued_it(
    fake, fake_time, make_backend, status, headers, body
):
    fake.fail("submit", Reply(status, body, {**headers, "X-Fal-Error-Type": "internal_error"}))
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.submits) == 1 and fake_time.sleeps == []
    assert str(info.value) == (
        f"fal failed while submitting to fal-ai/flux/schnell (HTTP {status}: upstream trouble); "
        "not retried, so that nothing is paid twice: check its requests at "
        "https://fal.ai/dashboard before trying again"
    )
    assert not is_transient(info.value)


def test_a_deadline_the_caller_set_is_not_retried(fake, fake_time, make_backend):
    fake.queue_polls = 0
    fake.progress_polls = 0
    fake.fail(
        "result",
        Reply(
            504,
            {"detail": "Request timed out", "error_type": "request_timeout"},
            {"X-Fal-Request-Timeout-Type": "user", "X-Fal-Error-Type": "request_timeout"},
        ),
    )
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.results) == 1
    assert "(HTTP 504: Request timed out)" in str(info.value)


def test_polls_are_retried_on_5xx_with_backoff(fake, fake_time, make_backend):
    fake.queue_polls = 0
    fake.progress_polls = 0
    fake.fail("status", Reply(503, {"detail": "busy"}), Reply(502, b"Bad Gateway"))
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.polls) == 3
    assert fake_time.sleeps == [1.0, 2.0]  # two backoffs, then COMPLETED at once
    assert result.metadata["status"] == "COMPLETED"


def test_polls_failing_for_good_stop_after_the_budget_and_cancel(fake, fake_time, make_backend):
    fake.fail("status", *[Reply(503, {"detail": "Service Unavailable"})] * 10)
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    rid = fake.only().id
    assert len(fake.polls) == 6
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert str(info.value) == (
        f"fal is failing while polling request {rid} (HTTP 503: Service Unavailable); "
        "try again later"
    )
    # It may still run and be paid for: canceled.
    assert [c.path for c in fake.cancels] == [f"/fal-ai/flux/requests/{rid}/cancel"]
    assert fake.only().canceled


def test_retries_stop_at_the_deadline(fake, fake_time, make_backend):
    fake.fail("status", Reply(503, {"detail": "busy"}, {"Retry-After": "30"}))
    with pytest.raises(BackendError, match="HTTP 503: busy"):
        make_backend(timeout_s=10.0).generate(Request("x", seed=1), Steps())
    assert 30.0 not in fake_time.sleeps  # waiting would pass the deadline
    assert len(fake.cancels) == 1


def test_result_fetches_are_retried(fake, fake_time, make_backend):
    fake.queue_polls = 0
    fake.progress_polls = 0
    fake.fail("result", Reply(500, {"detail": "oops"}), Reply(429, THROTTLED, {"Retry-After": "1"}))
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.results) == 3 and fake_time.sleeps == [1.0, 1.0]
    assert result.image


def test_downloads_are_retried_on_429_and_5xx(fake, fake_time, make_backend):
    fake.queue_polls = 0
    fake.progress_polls = 0
    fake.fail("file", Reply(429, b"slow down", {"Retry-After": "3"}), Reply(500, b"oops"))
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.downloads) == 3 and fake_time.sleeps == [3.0, 2.0]
    assert result.image.startswith(b"\xff\xd8\xff")


def test_downloads_give_up_after_the_budget_without_cancelling(fake, fake_time, make_backend):
    fake.fail("file", *[Reply(503, b"down")] * 10)
    with pytest.raises(BackendError, match=r"while downloading the output \(HTTP 503: down\)"):
        make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.downloads) == 6
    assert fake.cancels == []  # the request had completed: nothing to cancel


def test_cancel_is_retried_briefly(fake, fake_time, make_backend):
    fake.never_finish = True
    fake.fail("cancel", Reply(503, {"detail": "busy"}))
    with pytest.raises(BackendError, match="did not finish within timeout_s=5s"):
        make_backend(timeout_s=5.0).generate(Request("x", seed=1), Steps())
    assert len(fake.cancels) == 2 and fake.only().canceled
