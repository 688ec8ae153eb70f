"""Which failures `imagen worker` runs again. Replicate bills a prediction once it
runs, also when it then fails or is canceled, and nothing for one that never
started. So a failure is transient only where no prediction ran: a create
refused with 429, an upload (nothing created yet), and a prediction that ended,
or that imagen canceled, without ever running (aborted by its deadline, failed
with an error that may pass before it started, canceled while starting). A
create that never reached Replicate is unavailable. Everything else fails the
job at once: a refusal, a create that may have left, a prediction that ran."""

from __future__ import annotations

import pytest
import requests

from imagen_core import BackendError, ImageInput, Request
from imagen_core.errors import is_transient, is_unavailable
from tests.helpers import closed_port
from tests.replicate.conftest import Steps
from tests.replicate.fake_replicate import Reply
from tests.replicate.test_inputs import noise_png

KONTEXT = "black-forest-labs/flux-kontext-pro"
DOWN = Reply(503, {"detail": "Service Unavailable", "status": 503})
# Replicate's error codes page: E6716 "Timeout Starting Prediction", E1000 "Unknown
# Error" ("Try retrying your prediction"), E1001 "Model Out of Memory".
TIMEOUT_STARTING = "E6716: Timeout starting prediction"
UNKNOWN = "E1000: Unknown error"
OUT_OF_MEMORY = "E1001: Model out of memory (OOM killed)"


def _failure(make_backend, request: Request | None = None, **settings) -> BackendError:
    with pytest.raises(BackendError) as info:
        make_backend(**settings).generate(request or Request("a cat", seed=1), Steps())
    return info.value


def test_an_upload_failing_for_good_is_transient(fake, fake_time, make_backend):
    fake.fail_always("upload", DOWN)
    big = ImageInput.from_bytes(noise_png(620))
    error = _failure(make_backend, Request("x", inputs=[big], seed=1), model=KONTEXT)
    assert len(fake.uploads) == 6 and not fake.creates  # nothing created, nothing paid
    assert is_transient(error) and not is_unavailable(error)


def test_an_upload_that_cannot_connect_is_unavailable(fake_time, make_backend):
    big = ImageInput.from_bytes(noise_png(620))
    error = _failure(
        make_backend,
        Request("x", inputs=[big], seed=1),
        model=KONTEXT,
        base_url=f"http://127.0.0.1:{closed_port()}",
    )
    assert is_unavailable(error) and "while uploading" in str(error)


@pytest.mark.parametrize(
    ("reply", "fix"),
    [
        (Reply(401, {"detail": "You did not pass a valid authentication token"}),
         "set a valid API token from"),
        (Reply(402, {"detail": "You have run out of credit"}), "add credit at"),
        (Reply(403, {"detail": "Forbidden"}), "check that the token in REPLICATE_API_TOKEN"),
        (Reply(500, {"detail": "Internal server error"}),
         "check https://replicate.com/predictions before trying again"),
    ],
)  # fmt: skip
def test_a_create_refused_or_that_may_exist_fails_at_once(
    fake, fake_time, make_backend, reply, fix
):
    fake.fail(
        "create", Reply(reply.status, reply.body, {"Content-Type": "application/problem+json"})
    )
    error = _failure(make_backend)
    assert len(fake.creates) == 1 and not is_transient(error)
    assert fix in str(error) and "\n" not in str(error)


def test_an_input_replicate_refuses_fails_at_once(fake, fake_time, make_backend):
    error = _failure(make_backend, Request("a cat", seed=1, steps=8))
    assert "Must be less than or equal to 4 (HTTP 422)" in str(error)
    assert len(fake.creates) == 1 and not is_transient(error)


def test_polls_failing_while_it_never_started_are_transient_once_canceled(
    fake, fake_time, make_backend
):
    fake.sync = "starting"  # sync mode ended while it waited for a machine
    fake.fail_always("get", DOWN)
    error = _failure(make_backend, timeout_s=60.0)
    (pid,) = fake.predictions
    assert fake.predictions[pid].data["status"] == "canceled"
    assert "started_at" not in fake.predictions[pid].data  # it never ran: not charged
    assert is_transient(error) and not is_unavailable(error)


def test_polls_failing_after_it_ran_are_final(fake, fake_time, make_backend):
    fake.sync, fake.outcome = "starting", "running"

    def outage_once_it_runs(_n: int) -> None:
        if fake.polls:  # the first poll saw it processing: Replicate bills that time
            fake.fail_always("get", DOWN)

    fake_time.on_sleep = outage_once_it_runs
    error = _failure(make_backend, timeout_s=60.0)
    (pid,) = fake.predictions
    assert fake.predictions[pid].data["started_at"] and fake.cancels
    assert not is_transient(error)
    assert str(error).startswith(f"Replicate is failing while polling prediction {pid} (HTTP 503")
    assert str(error).endswith(
        "; not run again by imagen worker: the prediction ran, and may be billed"
    )


def test_polls_failing_when_the_cancel_fails_too_are_final(fake, fake_time, make_backend, capsys):
    fake.sync = "starting"
    fake.fail_always("get", DOWN)
    fake.fail_always("cancel", DOWN)
    error = _failure(make_backend, timeout_s=60.0)
    (pid,) = fake.predictions
    # It may still start, run and be paid for: running the job again could pay twice.
    assert not is_transient(error)
    assert str(error).endswith("; not run again by imagen worker: the prediction may still run")
    assert f"could not cancel prediction {pid}" in capsys.readouterr().err


def test_a_poll_timing_out_is_polled_again(fake, fake_time, make_backend, monkeypatch):
    send = requests.Session.request
    timeouts = []

    def slow_polls(self, method, url, **kwargs):
        if method == "GET" and "/v1/predictions/" in url and len(timeouts) < 8:
            timeouts.append(url)
            raise requests.ReadTimeout("HTTPConnectionPool: Read timed out. (read timeout=30)")
        return send(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", slow_polls)
    fake.sync, fake.polls_to_finish = "starting", 1
    result = make_backend().generate(Request("a cat", seed=1), Steps())
    assert len(timeouts) == 8 and fake.cancels == []  # past one poll's 5 retries
    assert result.metadata["status"] == "succeeded"


def test_the_timeout_while_it_never_started_is_transient_once_canceled(
    fake, fake_time, make_backend
):
    fake.sync, fake.outcome, fake.start_after = "starting", "running", 10**9  # a cold boot
    error = _failure(make_backend, timeout_s=30.0)
    assert "did not finish within timeout_s=30s (status starting)" in str(error)
    assert fake.cancels and is_transient(error)


def test_the_timeout_after_it_ran_is_final(fake, fake_time, make_backend):
    fake.sync, fake.outcome = "starting", "running"
    error = _failure(make_backend, timeout_s=30.0)
    assert "(status processing)" in str(error) and not is_transient(error)


@pytest.mark.parametrize("sync", ["succeeded", "starting"])
def test_an_aborted_prediction_is_transient(fake, fake_time, make_backend, sync):
    fake.sync, fake.outcome = sync, "aborted"
    error = _failure(make_backend)
    assert "was aborted before it started" in str(error) and is_transient(error)


@pytest.mark.parametrize(
    ("error", "before_start", "transient", "ends"),
    [
        (TIMEOUT_STARTING, True, True, "; it never started (not charged)"),
        (UNKNOWN, True, True, "; it never started (not charged)"),
        (
            "Prediction interrupted; please retry (code: PA)",
            False,
            False,
            "; Replicate says it may pass: run the generation again (it ran, so it may be "
            "billed, and imagen worker does not run it twice)",
        ),
        (UNKNOWN, False, False, "imagen worker does not run it twice)"),
        (OUT_OF_MEMORY, False, False, "(logs: https://replicate.com/p/{id})"),
        (
            "All generated images contained NSFW content. Try running it again with a "
            "different prompt.",
            False,
            False,
            "(logs: https://replicate.com/p/{id})",
        ),
    ],
)
def test_a_failed_prediction_is_transient_only_when_it_may_pass_and_never_ran(
    fake, fake_time, make_backend, error, before_start, transient, ends
):
    fake.sync, fake.outcome, fake.error = "starting", "failed", error
    fake.fails_before_start = before_start
    failure = _failure(make_backend)
    (pid,) = fake.predictions
    assert str(failure).startswith(f"Replicate prediction {pid} failed: {error} (logs: ")
    assert str(failure).endswith(ends.format(id=pid))
    assert is_transient(failure) is transient and not is_unavailable(failure)
    assert fake.cancels == []  # final: nothing to cancel


def test_a_prediction_canceled_by_someone_is_final(fake, fake_time, make_backend):
    fake.outcome = "canceled"
    error = _failure(make_backend)
    assert "was canceled" in str(error) and not is_transient(error)


def test_a_download_failing_for_good_is_final(fake, fake_time, make_backend):
    fake.fail_always("file", DOWN)
    error = _failure(make_backend)
    assert "while downloading the output (HTTP 503" in str(error)
    assert not is_transient(error)  # the image is made and paid for
