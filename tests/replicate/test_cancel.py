"""Ctrl-C and the timeout cancel the prediction (POST /v1/predictions/{id}/cancel)
before imagen exits with 130 or reports the error, so nothing runs on unpaid-for."""

from __future__ import annotations

import pytest
import requests

from imagen_core import BackendError, Request
from imagen_core.cli import main
from imagen_replicate.client import ReplicateClient
from tests.replicate.conftest import Steps
from tests.replicate.fake_replicate import Reply


def ctrl_c_at(fake_time, sleep_number: int) -> None:
    def press(count: int) -> None:
        if count == sleep_number:
            raise KeyboardInterrupt

    fake_time.on_sleep = press


def test_ctrl_c_while_polling_cancels_and_propagates(fake, fake_time, make_backend):
    fake.sync = "starting"
    fake.polls_to_finish = 10
    ctrl_c_at(fake_time, 2)
    with pytest.raises(KeyboardInterrupt):
        make_backend().generate(Request("x", seed=1), Steps())
    (pid,) = fake.predictions
    (cancel,) = fake.cancels
    assert (cancel.method, cancel.path, cancel.body) == (
        "POST",
        f"/v1/predictions/{pid}/cancel",
        b"",
    )
    assert cancel.headers["authorization"] == f"Bearer {fake.token}"
    assert fake.predictions[pid].data["status"] == "canceled"
    assert fake.downloads == []


def test_ctrl_c_in_the_cli_cancels_and_exits_130(
    capsys, fake, fake_time, token, configure, output_dir
):
    configure()
    fake.sync = "starting"
    fake.polls_to_finish = 10
    ctrl_c_at(fake_time, 3)
    with pytest.raises(SystemExit) as info:
        main(["generate", "a cat", "--backend", "rep"])
    out, err = capsys.readouterr()
    assert info.value.code == 130
    # (click prints a newline of its own before it, as for any command.)
    assert out == "" and err.strip() == "imagen: interrupted"
    assert len(fake.cancels) == 1
    assert not output_dir.exists() or not any(output_dir.rglob("*.*"))


def test_ctrl_c_after_the_prediction_is_final_cancels_nothing(fake, make_backend, monkeypatch):
    def interrupted(self, url):
        raise KeyboardInterrupt

    monkeypatch.setattr(ReplicateClient, "download", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_backend().generate(Request("x", seed=1), Steps())
    assert fake.cancels == []  # succeeded already: a cancel would change nothing


def test_ctrl_c_while_replicate_holds_the_create_call(fake, make_backend, monkeypatch, capsys):
    # The POST reached Replicate (the prediction exists) but its answer, and so the
    # id, never arrives: nothing to cancel by id; the Cancel-After deadline and a
    # warning are what is left.
    send = requests.Session.request

    def lost_answer(self, method, url, **kwargs):
        response = send(self, method, url, **kwargs)
        if method == "POST" and url.endswith("/predictions"):
            raise KeyboardInterrupt
        return response

    monkeypatch.setattr(requests.Session, "request", lost_answer)
    with pytest.raises(KeyboardInterrupt):
        make_backend(timeout_s=120.0).generate(Request("x", seed=1), Steps())
    assert len(fake.creates) == 1 and fake.cancels == []
    assert fake.creates[0].headers["cancel-after"] == "3m"
    assert capsys.readouterr().err == (
        "imagen: replicate: interrupted before Replicate answered: a prediction may have been "
        "created; Replicate cancels it by its 3m deadline, or cancel it at "
        "https://replicate.com/predictions\n"
    )


def test_timeout_cancels_and_fails(fake, fake_time, make_backend):
    fake.sync = "starting"
    fake.outcome = "running"
    with pytest.raises(BackendError) as info:
        make_backend(timeout_s=30.0).generate(Request("x", seed=1), Steps())
    (pid,) = fake.predictions
    assert str(info.value) == (
        f"Replicate prediction {pid} did not finish within timeout_s=30s (status processing); "
        "imagen asked Replicate to cancel it. Raise timeout_s in the backend's block if the "
        "model needs longer (a cold start can take minutes); not run again by imagen worker: "
        "the prediction ran, and may be billed"
    )
    assert sum(fake_time.sleeps) == pytest.approx(30.0)  # waited exactly the timeout
    assert max(fake_time.sleeps) == 5.0  # with the interval capped
    assert [c.path for c in fake.cancels] == [f"/v1/predictions/{pid}/cancel"]
    assert fake.predictions[pid].data["status"] == "canceled"


def test_timeout_in_the_cli_is_one_line_and_exit_1(capsys, fake, fake_time, token, configure):
    configure(extra="timeout_s: 20")
    fake.sync = "starting"
    fake.outcome = "running"
    with pytest.raises(SystemExit) as info:
        main(["generate", "a cat", "--backend", "rep"])
    _, err = capsys.readouterr()
    assert info.value.code == 1
    assert err.count("\n") == 1 and "did not finish within timeout_s=20s" in err
    assert len(fake.cancels) == 1


def test_a_failed_cancel_is_reported_with_where_to_cancel(fake, fake_time, make_backend, capsys):
    fake.sync = "starting"
    fake.outcome = "running"
    fake.fail("cancel", *[Reply(500, {"detail": "cancel broke"})] * 3)
    with pytest.raises(BackendError, match="did not finish within timeout_s=5s"):
        make_backend(timeout_s=5.0).generate(Request("x", seed=1), Steps())
    (pid,) = fake.predictions
    assert capsys.readouterr().err == (
        f"imagen: replicate: could not cancel prediction {pid} (Replicate is failing while "
        f"cancelling prediction {pid} (HTTP 500: cancel broke); see "
        "https://replicate.com/status and try again later); cancel it at "
        f"https://replicate.com/p/{pid}\n"
    )
