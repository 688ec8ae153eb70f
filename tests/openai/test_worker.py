"""imagen worker with an OpenAI backend: a job OpenAI could not serve (503s past
the client's retries) goes back to the queue and is done on its next attempt; a
job OpenAI refuses (its safety system) fails on its first attempt and is sent once."""

from __future__ import annotations

from imagen_core import Request, Session
from tests.helpers import run_worker_once
from tests.openai.fake_openai import FORBIDDEN, error


def test_a_503_job_is_requeued_and_done_a_refused_job_fails_once(
    fake, fake_time, key, configure, output_dir
):
    configure()
    # The first attempt meets a 503 on its first try and on each of the 5 retries.
    busy = error(503, "The engine is currently overloaded, please try again later.", "server_error")
    fake.fail_prompt("a cat", *[busy] * 6)
    session = Session()
    queue = session.queue()
    busy_job = queue.submit(Request("a cat", seed=1), backend="oa")
    refused_job = queue.submit(Request(f"a {FORBIDDEN} dog", seed=2), backend="oa")

    lines = run_worker_once(session)

    busy_job, refused_job = queue.get(busy_job.id), queue.get(refused_job.id)
    assert busy_job.status == "done" and busy_job.attempts == 2
    assert refused_job.status == "failed" and refused_job.attempts == 1
    assert "safety system refused the request (moderation_blocked" in (refused_job.error or "")
    prompts = [r.json["prompt"] for r in fake.generations]
    assert prompts.count("a cat") == 7  # 6 answered 503, then the image
    assert prompts.count(f"a {FORBIDDEN} dog") == 1
    statuses = sorted(line.split()[3] for line in lines)  # job ID BACKEND STATUS ...
    assert statuses == ["done", "failed", "retrying"]
    retrying = next(line for line in lines if " retrying " in line)
    assert f"job {busy_job.id[:8]} oa retrying (1/3)" in retrying
    assert "is failing (HTTP 503: The engine is currently overloaded" in retrying
    assert busy_job.result_path is not None and (output_dir / busy_job.result_path).exists()
