"""imagen worker with a ComfyUI backend: which failures are retried, a server
that is down, and how fast a canceled job lets go of its socket."""

from __future__ import annotations

import socket
import threading

from imagen_comfyui.client import ComfyUIClient
from imagen_core import Request, Session
from imagen_core import worker as worker_mod
from imagen_core.errors import is_transient, is_unavailable
from imagen_core.worker import Worker, WorkerOptions


def run_once(session: Session) -> list[str]:
    lines: list[str] = []
    Worker(
        session, session.queue(), WorkerOptions(once=True, idle_wait_s=0.02), log=lines.append
    ).run()
    return lines


def test_an_error_in_the_workflow_fails_the_job_at_once(comfy, configure):
    comfy.script.fail_class = "KSampler"  # ComfyUI's execution_error
    configure()
    session = Session()
    job = session.queue().submit(Request("a cat", width=64, height=64), backend="comfy")
    run_once(session)
    failed = session.queue().get(job.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert len(comfy.seen("POST", "/prompt")) == 1


def test_a_server_that_is_down_is_unavailable_and_its_job_waits(
    isolated_env, configure, monkeypatch
):
    # --once checks again after 0.05 and 0.1 s, then gives up (exit 1).
    monkeypatch.setattr(worker_mod, "DOWN_FIRST_S", 0.05)
    monkeypatch.setattr(worker_mod, "DOWN_MAX_S", 0.2)
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure()
    text = (isolated_env / ".config" / "imagen.yaml").read_text()
    url = text.split("url: ")[1].split("\n")[0]
    (isolated_env / ".config" / "imagen.yaml").write_text(
        text.replace(url, f"http://127.0.0.1:{port}")
    )
    session = Session()
    job = session.queue().submit(Request("a cat", width=64, height=64), backend="comfy")
    lines: list[str] = []
    worker = Worker(
        session, session.queue(), WorkerOptions(once=True, idle_wait_s=0.02), log=lines.append
    )
    assert worker.run() == 1
    waiting = session.queue().get(job.id)
    assert (waiting.status, waiting.attempts) == ("queued", 0)
    assert sum("is unreachable" in line for line in lines) == 1
    assert sum("--once gives up on it" in line for line in lines) == 1, lines
    _, backend = session.backend("comfy")
    try:
        backend.generate(Request("x", width=64, height=64), lambda *a: None)
    except Exception as exc:
        assert is_unavailable(exc) and is_transient(exc)
    else:
        raise AssertionError("a dead server made an image")


def test_a_canceled_job_is_noticed_within_one_socket_slice(comfy, configure, monkeypatch):
    """The worker cancels a job by raising in its thread, which a socket read
    only sees when it returns: every read must wait at most recv_slice_s (not
    the 5 s watchdog), so cancelling takes well under a second."""
    import websocket

    monkeypatch.setattr(ComfyUIClient, "watchdog_s", 5.0)  # the real value
    waits: list[float] = []
    real = websocket.WebSocket.settimeout

    def settimeout(self, timeout):
        waits.append(timeout)
        return real(self, timeout)

    monkeypatch.setattr(websocket.WebSocket, "settimeout", settimeout)
    comfy.script.delay_s = 30
    rendering = threading.Event()
    comfy.script.on_start = lambda _pid: rendering.set()
    configure()
    session = Session()
    queue = session.queue()
    job = queue.submit(Request("a cat", width=512, height=512), backend="comfy")
    worker = Worker(
        session, queue, WorkerOptions(once=True, idle_wait_s=0.02, lease_s=0.3), log=print
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    assert rendering.wait(30)
    queue.cancel(job.id)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert queue.get(job.id).status == "canceled"
    assert waits and max(waits[1:]) <= 0.5  # [0] is the connect; before: the 5 s watchdog
