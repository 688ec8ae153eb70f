"""Every failure is one line naming the problem and the fix: auth, credit, an
unknown endpoint, a refused input (fal's 422 body), a failing model, lost files,
an unreachable service; the key never appears in any of them."""

from __future__ import annotations

import socket

import pytest
import requests

from imagen_core import BackendError, BackendUnavailable, Request
from imagen_core.errors import is_transient, is_unavailable
from tests.fal.conftest import Steps, image
from tests.fal.fake_fal import Reply
from tests.helpers import one_line, run_cli


def _cli_error(capsys, *args: str) -> tuple[int, str]:
    code, _, err = run_cli(capsys, "generate", *args)
    return code, one_line(err).strip()


def test_a_wrong_key_is_named_by_its_variable(capsys, fake, key, configure, monkeypatch):
    configure()
    monkeypatch.setenv("FAL_KEY", "0000:wrong")
    code, err = _cli_error(capsys, "x")
    assert code == 1
    assert err == (
        "imagen: fal rejected the key in FAL_KEY (HTTP 401: Unauthorized); set a valid API key "
        "from https://fal.ai/dashboard/keys"
    )
    assert fake.queued == {}


def test_a_missing_key_names_the_variable_and_the_block(capsys, fake, configure, monkeypatch):
    configure()
    monkeypatch.delenv("FAL_KEY", raising=False)
    code, err = _cli_error(capsys, "x")
    assert code == 2
    assert err == "imagen: set FAL_KEY in the environment (named by backends.fal1.api_key_env)"
    assert fake.requests == []


def test_an_exhausted_balance_says_where_to_add_credit(fake, make_backend):
    fake.fail(
        "submit",
        Reply(
            403,
            {
                "detail": "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
            },
        ),
    )
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert str(info.value) == (
        "fal refused the request: User is locked. Reason: Exhausted balance. Top up your balance "
        "at fal.ai/dashboard/billing. (HTTP 403); add credit at https://fal.ai/dashboard/billing"
    )


def test_an_unknown_endpoint_names_the_model_key(capsys, fake, key, configure):
    configure(model="fal-ai/flux/turbo-deluxe")
    code, err = _cli_error(capsys, "x")
    assert code == 1
    assert err == (
        "imagen: fal has no endpoint fal-ai/flux/turbo-deluxe (HTTP 404: Application "
        "'fal-ai/flux/turbo-deluxe' not found); check `model` in the backend's block (an "
        "endpoint id from https://fal.ai/models)"
    )


@pytest.mark.parametrize("reports_error", [True, False])
def test_a_refused_input_lists_each_field_from_fals_422_body(
    fake, fake_time, make_backend, reports_error
):
    # The queue takes any JSON; the model validates when it runs, and the result URL
    # answers 422 {"detail": [{"loc", "msg", "type"}, ...]}.
    fake.status_reports_error = reports_error
    with pytest.raises(BackendError) as info:
        make_backend(model="fal-ai/flux/dev").generate(
            Request("x", seed=1, steps=80, extra={"cfg": 50}), Steps()
        )
    rid = fake.only().id
    assert str(info.value) == (
        f"fal request {rid} refused the input: num_inference_steps: Input should be less than "
        "or equal to 50; guidance_scale: Input should be less than or equal to 20 (HTTP 422); "
        "change those inputs (the request's options, or `extra:` in the backend's block)"
    )
    assert not is_transient(info.value) and not is_unavailable(info.value)
    assert len(fake.results) == 1  # a model's answer is not asked for twice
    assert fake.cancels == []


def test_a_failing_model_reports_its_error_once(fake, fake_time, make_backend):
    fake.runner_error = "CUDA out of memory"
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert str(info.value) == (
        f"fal request {fake.only().id} failed (runner_server_error): CUDA out of memory (HTTP 500)"
    )
    assert len(fake.results) == 1


def test_a_model_error_fal_does_not_flag_in_the_status_is_retried_then_reported(
    fake, fake_time, make_backend
):
    fake.runner_error = "CUDA out of memory"
    fake.status_reports_error = False
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.results) == 6  # 5xx without a word from the status: maybe transient
    assert str(info.value) == (
        f"fal is failing while fetching the result of request {fake.only().id} (HTTP 500: CUDA "
        "out of memory); try again later"
    )


def test_gone_output_files_say_so(fake, make_backend):
    fake.files_gone = True
    with pytest.raises(
        BackendError,
        match=r"^fal's output file is gone \(HTTP 404 for http://127\.0\.0\.1:\d+/files/",
    ):
        make_backend().generate(Request("x", seed=1), Steps())


def test_an_output_that_is_not_an_image(fake, make_backend, monkeypatch):
    monkeypatch.setattr(
        fake, "image", lambda queued, name: (b"%PDF-1.4 not an image", "application/pdf")
    )
    with pytest.raises(
        BackendError, match=r"is not an image \(type application/pdf\); is `model` an image model\?"
    ):
        make_backend().generate(Request("x", seed=1), Steps())


def test_an_output_without_images(fake, make_backend, monkeypatch):
    monkeypatch.setattr(fake, "_output", lambda queued: {"text": "hello"})
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert str(info.value) == (
        f"fal request {fake.only().id} completed with no image in its output (keys: text); "
        "is `model` an image model?"
    )


def test_something_else_at_base_url(fake, make_backend):
    fake.fail("submit", Reply(200, b"<html>hello</html>", {"Content-Type": "text/html"}))
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert str(info.value) == (
        "fal answered HTTP 200 with something that is not a queued request: <html>hello</html>; "
        "check base_url"
    )


def test_an_unreachable_service(fake_time, make_backend):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendUnavailable) as info:
        make_backend(base_url=f"http://127.0.0.1:{port}").generate(Request("x", seed=1), Steps())
    assert is_unavailable(info.value)  # the worker waits for fal, counting no attempt
    assert str(info.value) == (
        f"fal at http://127.0.0.1:{port} is not reachable while submitting to "
        "fal-ai/flux/schnell (connection refused); check the network, or base_url in the "
        "backend's block"
    )


def test_a_connection_lost_during_the_submit_is_not_retried(fake, make_backend, monkeypatch):
    send = requests.Session.request

    def dropped(self, method, url, **kwargs):
        if method == "POST":
            send(self, method, url, **kwargs)  # it reached the queue...
            raise requests.ConnectionError("('Connection aborted.', RemoteDisconnected())")
        return send(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", dropped)
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert len(fake.submits) == 1  # ...so it is not sent again
    assert str(info.value) == (
        f"fal at {fake.url} is not reachable while submitting to fal-ai/flux/schnell "
        "(connection failed); the request may have reached fal, so check its requests at "
        "https://fal.ai/dashboard before trying again"
    )
    assert not is_transient(info.value)  # running the job again could pay twice


def test_the_key_never_reaches_a_message(fake, fake_time, make_backend):
    fake.echo_key_in_errors = True
    fake.fail("status", *[Reply(500, {"detail": "boom"})] * 6)
    with pytest.raises(BackendError) as info:
        make_backend().generate(Request("x", seed=1), Steps())
    assert fake.key not in str(info.value) and "***" in str(info.value)


def test_the_key_is_in_no_repr(fake, make_backend):
    backend = make_backend()
    assert fake.key not in repr(backend) and fake.key not in repr(backend.config)


def test_the_upload_token_never_reaches_a_message(fake, fake_time, make_backend):
    fake.echo_key_in_errors = True
    fake.fail("upload", *[Reply(500, {"detail": "boom"})] * 6)
    with pytest.raises(BackendError) as info:
        make_backend(model="fal-ai/flux-pro/kontext", inline_max_kb=0).generate(
            Request("x", seed=1, inputs=[image()]), Steps()
        )
    assert "boom Bearer ***" in str(info.value) and fake.cdn_token not in str(info.value)


def test_a_status_this_code_does_not_know_is_waited_on(fake, fake_time, make_backend):
    fake.queue_polls = 0
    fake.fail("status", Reply(202, {"status": "PREPARING", "logs": None}))
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert result.metadata["status"] == "COMPLETED" and len(fake.polls) == 4
