"""Ctrl-C, a canceled worker job and the timeout while the image is being made:
the call is given up within one wait slice, its connection is shut (the server
sees the client go: imagen serve stops the generation then), and imagen says
what it could not undo."""

from __future__ import annotations

import pytest

from imagen_core import BackendError, Request, Session
from imagen_core.cli import main
from tests.fake_http import Steps
from tests.helpers import cancel_while_running, job_files, until


def ctrl_c_at_wait(fake_time, number: int) -> None:
    def press(count: int) -> None:
        if count == number:
            raise KeyboardInterrupt

    fake_time.on_wait = press


def test_ctrl_c_while_waiting_hangs_up_and_propagates(fake, fake_time, make_backend, capsys):
    fake.hold()
    ctrl_c_at_wait(fake_time, 3)
    with pytest.raises(KeyboardInterrupt):
        make_backend().generate(Request("x"), Steps())
    until(lambda: fake.hangups == 1, "the server never saw the client hang up")
    assert len(fake.generations) == 1
    assert capsys.readouterr().err == (
        f"imagen: openai: interrupted while the server at http://127.0.0.1:{fake.port} was "
        "making the image; the request was abandoned\n"
    )


def test_ctrl_c_in_the_cli_exits_130_and_writes_nothing(
    capsys, fake, fake_time, key, configure, output_dir
):
    configure()
    fake.hold()
    ctrl_c_at_wait(fake_time, 2)
    with pytest.raises(SystemExit) as info:
        main(["generate", "a cat", "--backend", "oa"])
    out, err = capsys.readouterr()
    assert info.value.code == 130 and out == ""
    assert err.strip().splitlines()[-1] == "imagen: interrupted"
    until(lambda: fake.hangups == 1, "the server never saw the client hang up")
    assert not output_dir.exists() or not any(output_dir.rglob("*.*"))


def test_ctrl_c_while_backing_off_sends_nothing_more(fake, fake_time, make_backend):
    from tests.openai.fake_openai import rate_limited

    fake.fail("generations", rate_limited(retry_after="5"))

    def press(_count: int) -> None:
        raise KeyboardInterrupt

    fake_time.on_sleep = press
    with pytest.raises(KeyboardInterrupt):
        make_backend().generate(Request("x"), Steps())
    assert len(fake.generations) == 1 and fake_time.sleeps == [5.0]


def test_the_timeout_gives_up_hangs_up_and_fails(fake, fake_time, make_backend):
    fake.hold()
    with pytest.raises(BackendError) as info:
        make_backend(timeout_s=2.0).generate(Request("x"), Steps())
    assert str(info.value) == (
        f"the server at http://127.0.0.1:{fake.port} did not answer within timeout_s=2s; the "
        "request was abandoned. Raise timeout_s in the backend's block if the model needs longer"
    )
    assert fake_time.waits == 8  # 2 s in slices of 0.25 s
    until(lambda: fake.hangups == 1, "the server never saw the client hang up")


def test_the_timeout_in_the_cli_is_one_line_and_exit_1(capsys, fake, fake_time, key, configure):
    configure(extra="timeout_s: 1")
    fake.hold()
    with pytest.raises(SystemExit) as info:
        main(["generate", "a cat", "--backend", "oa"])
    _, err = capsys.readouterr()
    assert info.value.code == 1
    assert err.count("\n") == 1 and "did not answer within timeout_s=1s" in err


def test_a_job_canceled_while_its_image_is_made_hangs_up(
    fake, fake_time, key, configure, output_dir
):
    configure(extra="timeout_s: 100000")
    fake.hold()
    job, lines = cancel_while_running(
        Session(), "oa", fake.holding.is_set, "no generation reached the server"
    )
    until(lambda: fake.hangups == 1, "the server never saw the client hang up")
    assert job.status == "canceled"
    assert len(lines) == 1 and " canceled " in lines[0]
    assert job_files(output_dir) == []


def test_credentials_in_base_url_never_reach_a_warning(fake, fake_time, make_backend, capsys):
    fake.key = None  # a server behind basic auth, which requests sends from the URL
    fake.hold()
    ctrl_c_at_wait(fake_time, 1)
    backend = make_backend(
        base_url=f"http://user:s3cret@127.0.0.1:{fake.port}/v1", api_key_env=None
    )
    with pytest.raises(KeyboardInterrupt):
        backend.generate(Request("x"), Steps())
    err = capsys.readouterr().err
    assert "s3cret" not in err and f"the server at http://127.0.0.1:{fake.port} was" in err
