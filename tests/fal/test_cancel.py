"""Ctrl-C, a canceled worker job and the timeout cancel the request (PUT
.../cancel) before imagen exits with 130 or reports the error, so nothing runs on
unpaid-for; a request that already completed is not canceled."""

from __future__ import annotations

import time

import pytest
import requests

from imagen_core import BackendError, Request, Session
from imagen_core.cli import main
from imagen_fal.client import FalClient
from tests.fal.conftest import Steps
from tests.fal.fake_fal import Reply
from tests.helpers import cancel_while_running, job_files


def ctrl_c_at(fake_time, sleep_number: int) -> None:
    def press(count: int) -> None:
        if count == sleep_number:
            raise KeyboardInterrupt

    fake_time.on_sleep = press


def test_ctrl_c_in_the_queue_cancels_and_propagates(fake, fake_time, make_backend):
    fake.queue_polls = 10
    ctrl_c_at(fake_time, 2)
    with pytest.raises(KeyboardInterrupt):
        make_backend(model="fal-ai/flux/dev").generate(Request("x", seed=1), Steps())
    queued = fake.only()
    (cancel,) = fake.cancels
    assert (cancel.method, cancel.path, cancel.body) == (
        "PUT",
        f"/fal-ai/flux/requests/{queued.id}/cancel",
        b"",
    )
    assert cancel.headers["authorization"] == f"Key {fake.key}"
    assert queued.canceled and queued.state == "IN_QUEUE"
    assert fake.results == [] and fake.downloads == []


def test_ctrl_c_while_it_runs_cancels(fake, fake_time, make_backend):
    fake.queue_polls = 0
    fake.never_finish = True
    ctrl_c_at(fake_time, 3)
    with pytest.raises(KeyboardInterrupt):
        make_backend().generate(Request("x", seed=1), Steps())
    assert fake.only().state == "IN_PROGRESS" and fake.only().canceled
    assert len(fake.cancels) == 1


def test_ctrl_c_in_the_cli_cancels_and_exits_130(
    capsys, fake, fake_time, key, configure, output_dir
):
    configure()
    fake.queue_polls = 10
    ctrl_c_at(fake_time, 3)
    with pytest.raises(SystemExit) as info:
        main(["generate", "a cat", "--backend", "fal1"])
    out, err = capsys.readouterr()
    assert info.value.code == 130
    assert out == "" and err.strip() == "imagen: interrupted"
    assert len(fake.cancels) == 1
    assert not output_dir.exists() or not any(output_dir.rglob("*.*"))


def test_ctrl_c_after_completion_cancels_nothing(fake, make_backend, monkeypatch):
    def interrupted(self, url):
        raise KeyboardInterrupt

    monkeypatch.setattr(FalClient, "download", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_backend().generate(Request("x", seed=1), Steps())
    assert fake.cancels == []  # completed already: a cancel would change nothing


def test_ctrl_c_before_fal_answers_the_submit_warns(fake, make_backend, monkeypatch, capsys):
    # The POST reached fal (the request is queued) but its answer, and so the id,
    # never arrives: nothing to cancel by id; the start deadline is what is left.
    send = requests.Session.request

    def lost_answer(self, method, url, **kwargs):
        response = send(self, method, url, **kwargs)
        if method == "POST":
            raise KeyboardInterrupt
        return response

    monkeypatch.setattr(requests.Session, "request", lost_answer)
    with pytest.raises(KeyboardInterrupt):
        make_backend(timeout_s=120.0).generate(Request("x", seed=1), Steps())
    assert len(fake.submits) == 1 and fake.cancels == []
    assert fake.submits[0].headers["x-fal-request-timeout"] == "120"
    assert capsys.readouterr().err == (
        "imagen: fal: interrupted before fal answered: a request may have been queued; fal "
        "drops it if it has not started within 120s, or cancel it at https://fal.ai/dashboard\n"
    )


def test_timeout_cancels_and_fails(fake, fake_time, make_backend):
    fake.never_finish = True
    with pytest.raises(BackendError) as info:
        make_backend(timeout_s=30.0).generate(Request("x", seed=1), Steps())
    queued = fake.only()
    assert str(info.value) == (
        f"fal request {queued.id} did not finish within timeout_s=30s (status IN_PROGRESS); "
        "imagen asked fal to cancel it. Raise timeout_s in the backend's block if the model "
        "needs longer (a busy queue or a cold start can take minutes)"
    )
    assert sum(fake_time.sleeps) == pytest.approx(30.0)  # waited exactly the timeout
    assert max(fake_time.sleeps) == 5.0  # with the interval capped
    assert [c.path for c in fake.cancels] == [f"/fal-ai/flux/requests/{queued.id}/cancel"]
    assert queued.canceled


def test_timeout_in_the_cli_is_one_line_and_exit_1(capsys, fake, fake_time, key, configure):
    configure(extra="timeout_s: 20")
    fake.never_finish = True
    with pytest.raises(SystemExit) as info:
        main(["generate", "a cat", "--backend", "fal1"])
    _, err = capsys.readouterr()
    assert info.value.code == 1
    assert err.count("\n") == 1 and "did not finish within timeout_s=20s" in err
    assert len(fake.cancels) == 1


def test_a_request_that_completed_meanwhile_is_not_an_error_to_cancel(
    fake, fake_time, make_backend, capsys
):
    fake.never_finish = True
    fake.fail("cancel", Reply(400, {"status": "ALREADY_COMPLETED"}))
    with pytest.raises(BackendError, match="did not finish within"):
        make_backend(timeout_s=5.0).generate(Request("x", seed=1), Steps())
    assert len(fake.cancels) == 1
    assert capsys.readouterr().err == ""  # nothing left to cancel: nothing to warn about


def test_a_failed_cancel_is_reported_with_where_to_cancel(fake, fake_time, make_backend, capsys):
    fake.never_finish = True
    fake.fail("cancel", *[Reply(500, {"detail": "cancel broke"})] * 3)
    with pytest.raises(BackendError, match="did not finish within timeout_s=5s"):
        make_backend(timeout_s=5.0).generate(Request("x", seed=1), Steps())
    rid = fake.only().id
    assert len(fake.cancels) == 3  # the first try and two quick retries
    assert capsys.readouterr().err == (
        f"imagen: fal: could not cancel request {rid} (fal is failing while cancelling request "
        f"{rid} (HTTP 500: cancel broke); try again later); cancel it at https://fal.ai/dashboard\n"
    )


def test_a_canceled_worker_job_cancels_its_request(fake, fake_time, key, configure, output_dir):
    configure(extra="timeout_s: 100000")
    fake.never_finish = True  # it would never finish on its own
    fake_time.on_sleep = lambda _n: time.sleep(0.005)  # polls at a real pace
    job, lines = cancel_while_running(
        Session(), "fal1", lambda: fake.polls, "no request was submitted"
    )
    queued = fake.only()
    assert [c.path for c in fake.cancels] == [f"/fal-ai/flux/requests/{queued.id}/cancel"]
    assert queued.canceled
    assert job.status == "canceled"
    assert len(lines) == 1 and " canceled " in lines[0]
    assert job_files(output_dir) == []
