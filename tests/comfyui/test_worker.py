"""imagen worker with a ComfyUI backend: a job stopped while its prompt renders
has that prompt interrupted on the server, not left to burn the GPU."""

from __future__ import annotations

import threading
import time

from imagen_core import Request, Session
from imagen_core.worker import Worker, WorkerOptions
from tests.helpers import job_files


def start_worker(session: Session, lines: list[str]) -> tuple[Worker, threading.Thread]:
    worker = Worker(
        session,
        session.queue(),
        WorkerOptions(once=True, idle_wait_s=0.02, lease_s=0.3, abort_grace_s=10),
        log=lines.append,
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    return worker, thread


def test_second_signal_requeues_and_interrupts_the_prompt_on_the_server(
    comfy, configure, output_dir
):
    comfy.script.delay_s = 30  # a render that would outlast any patience
    rendering = threading.Event()
    comfy.script.on_start = lambda _pid: rendering.set()
    configure()
    session = Session()
    job = session.queue().submit(Request("a cat", width=512, height=512), backend="comfy")
    lines: list[str] = []
    worker, thread = start_worker(session, lines)
    assert rendering.wait(10)

    started = time.monotonic()
    worker.stopping.set()  # the first signal: would wait the 30 s out
    worker.abort()  # the second
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10  # stopped, not rendered to the end

    prompt_id = comfy.seen("POST", "/prompt")[0]["body"]["prompt_id"]
    assert [r["body"] for r in comfy.seen("POST", "/interrupt")] == [{"prompt_id": prompt_id}]
    back = session.queue().get(job.id)
    assert (back.status, back.attempts, back.worker) == ("queued", 0, None)
    assert lines[0].endswith("released worker stopping; its backend call is canceled")
    assert len(lines) == 1  # one line for the job
    assert job_files(output_dir) == []


def test_a_job_canceled_while_it_renders_is_interrupted_on_the_server(comfy, configure, output_dir):
    comfy.script.delay_s = 30
    rendering = threading.Event()
    comfy.script.on_start = lambda _pid: rendering.set()
    configure()
    session = Session()
    queue = session.queue()
    job = queue.submit(Request("a cat", width=512, height=512), backend="comfy")
    lines: list[str] = []
    _, thread = start_worker(session, lines)
    assert rendering.wait(10)

    started = time.monotonic()
    assert queue.cancel(job.id).status == "canceled"  # `imagen jobs cancel` elsewhere
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10

    prompt_id = comfy.seen("POST", "/prompt")[0]["body"]["prompt_id"]
    assert [r["body"] for r in comfy.seen("POST", "/interrupt")] == [{"prompt_id": prompt_id}]
    assert queue.get(job.id).status == "canceled"
    assert len(lines) == 1 and " canceled " in lines[0]
    assert job_files(output_dir) == []
