"""Which failures `imagen worker` runs again: a 429, a 5xx, a timeout or a lost
connection while running the job again cannot pay twice (nothing is queued
yet, the request was canceled, or fal says the run failed: fal bills no 5xx);
a service that cannot be reached at all is unavailable (the worker waits for
it); a 4xx that cannot pass, a request that may be queued and an output that
may be made and paid for fail the job at once."""

from __future__ import annotations

import pytest
import requests

from imagen_core import BackendError, Request
from imagen_core.errors import is_transient, is_unavailable
from tests.fal.conftest import Steps, image
from tests.fal.fake_fal import Reply
from tests.helpers import closed_port

NGINX_503 = (
    b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    b"</body></html>"
)


def _failure(make_backend, request: Request | None = None, **settings) -> BackendError:
    with pytest.raises(BackendError) as info:
        make_backend(**settings).generate(request or Request("x", seed=1), Steps())
    return info.value


def test_fals_ingress_failing_for_good_on_submit_is_transient(fake, fake_time, make_backend):
    fake.fail("submit", *[Reply(503, NGINX_503, {"Content-Type": "text/html"})] * 6)
    error = _failure(make_backend)
    assert len(fake.submits) == 6 and fake.queued == {}
    assert is_transient(error) and not is_unavailable(error)
    assert str(error).startswith("fal is failing while submitting to fal-ai/flux/schnell (HTTP 503")


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_from_the_queue_itself_on_submit_is_final(fake, fake_time, make_backend, status):
    # Past the ingress the request may be queued: another would be paid for too.
    fake.fail("submit", Reply(status, {"detail": "boom"}, {"X-Fal-Error-Type": "internal_error"}))
    error = _failure(make_backend)
    assert not is_transient(error) and "check its requests at https://fal.ai/dashboard" in str(
        error
    )


@pytest.mark.parametrize("status", [429, 500, 503, 504])
def test_status_polls_failing_for_good_are_transient_once_canceled(
    fake, fake_time, make_backend, status
):
    fake.fail("status", *[Reply(status, {"detail": "trouble"})] * 6)
    error = _failure(make_backend)
    assert fake.only().canceled  # fal agreed to cancel it: nothing will be paid
    assert is_transient(error) and not is_unavailable(error)


def test_status_polls_failing_when_the_cancel_fails_too_is_final(
    fake, fake_time, make_backend, capsys
):
    fake.fail("status", *[Reply(503, {"detail": "trouble"})] * 6)
    fake.fail("cancel", *[Reply(503, {"detail": "trouble"})] * 3)
    error = _failure(make_backend)
    rid = fake.only().id
    # It may still run and be paid for: running the job again could pay twice.
    assert not fake.only().canceled and not is_transient(error)
    assert str(error) == (
        f"fal is failing while polling request {rid} (HTTP 503: trouble); try again later"
    )
    assert f"could not cancel request {rid}" in capsys.readouterr().err


def test_a_status_poll_timing_out_is_transient(fake, fake_time, make_backend, monkeypatch):
    send = requests.Session.request

    def slow_status(self, method, url, **kwargs):
        if url.endswith("/status"):
            raise requests.ReadTimeout("HTTPConnectionPool: Read timed out. (read timeout=30.0)")
        return send(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", slow_status)
    error = _failure(make_backend)
    assert "while polling request" in str(error) and "(no answer in time)" in str(error)
    assert fake.only().canceled and is_transient(error) and not is_unavailable(error)


def test_the_timeout_is_transient_once_canceled(fake, fake_time, make_backend):
    fake.never_finish = True
    error = _failure(make_backend, timeout_s=30.0)
    assert "did not finish within timeout_s=30s" in str(error)
    assert fake.only().canceled and is_transient(error)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("runner_server_error", 500),
        ("runner_incomplete_response", 502),
        ("runner_scheduling_failure", 503),
        ("startup_timeout", 504),
    ],
)
@pytest.mark.parametrize("reports_error", [True, False])
def test_a_run_that_failed_on_fals_side_is_transient(
    fake, fake_time, make_backend, kind, status, reports_error
):
    # fal bills no 5xx, so running it again costs nothing twice.
    fake.runner_error, fake.runner_error_type = "no luck this time", kind
    fake.status_reports_error = reports_error
    error = _failure(make_backend)
    assert f"(HTTP {status}" in str(error)
    assert is_transient(error) and not is_unavailable(error)
    assert fake.cancels == []  # it completed: nothing to cancel


def test_a_result_failing_without_fals_error_body_is_final(fake, fake_time, make_backend):
    # The status said it completed without error: the image may be made and paid for.
    fake.fail("result", *[Reply(503, b"Service Unavailable", {"Content-Type": "text/plain"})] * 6)
    error = _failure(make_backend)
    assert len(fake.results) == 6 and not is_transient(error)


def test_a_download_failing_for_good_is_final(fake, fake_time, make_backend):
    fake.fail("file", *[Reply(503, b"down")] * 6)
    error = _failure(make_backend)
    assert "while downloading the output (HTTP 503: down)" in str(error)
    assert not is_transient(error)  # the image is made and paid for


@pytest.mark.parametrize(
    ("route", "reply", "fix"),
    [
        ("submit", Reply(401, {"detail": "Unauthorized"}), "set a valid API key from"),
        ("submit", Reply(403, {"detail": "Forbidden"}), "check that the key in FAL_KEY"),
        (
            "submit",
            Reply(403, {"detail": "User is locked. Reason: Exhausted balance."}),
            "add credit at",
        ),
        (
            "result",
            Reply(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body", "prompt"],
                            "msg": "The prompt was flagged by the content checker",
                            "type": "content_policy_violation",
                            "url": "https://docs.fal.ai/errors#content_policy_violation",
                        }
                    ]
                },
                {"X-Fal-Retryable": "false"},
            ),
            "reword the prompt or change the input images",
        ),
    ],
)
def test_refusals_that_cannot_pass_fail_at_once_naming_the_fix(
    fake, fake_time, make_backend, route, reply, fix
):
    fake.queue_polls = fake.progress_polls = 0
    fake.fail(route, reply)
    error = _failure(make_backend)
    assert fix in str(error) and "\n" not in str(error)
    assert not is_transient(error) and not is_unavailable(error)
    assert len(fake.routed(route)) == 1  # asked once


def test_a_storage_that_cannot_be_reached_before_the_submit_is_unavailable(
    fake, fake_time, make_backend
):
    port = closed_port()
    error = _failure(
        make_backend,
        Request("x", seed=1, inputs=[image()]),
        model="fal-ai/flux-pro/kontext",
        inline_max_kb=0,
        storage_url=f"http://127.0.0.1:{port}",
    )
    assert is_unavailable(error) and fake.queued == {}
    assert "or storage_url in the backend's block" in str(error)


def test_uploads_failing_for_good_are_transient(fake, fake_time, make_backend):
    fake.fail("upload", *[Reply(503, {"detail": "busy"})] * 6)
    error = _failure(
        make_backend,
        Request("x", seed=1, inputs=[image()]),
        model="fal-ai/flux-pro/kontext",
        inline_max_kb=0,
    )
    assert fake.queued == {} and is_transient(error)
