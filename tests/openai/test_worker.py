"""imagen worker with an OpenAI backend: a job OpenAI could not serve (503s past
the client's retries) goes back to the queue and is done on its next attempt; a
job OpenAI refuses (its safety system) fails on its first attempt and is sent once."""

from __future__ import annotations

from imagen_core import Request, Session
from tests.helpers import requeued_then_done
from tests.openai.fake_openai import FORBIDDEN, error


def test_a_503_job_is_requeued_and_done_a_refused_job_fails_once(
    fake, fake_time, key, configure, output_dir
):
    configure()
    # The first attempt meets a 503 on its first try and on each of the 5 retries.
    busy = error(503, "The engine is currently overloaded, please try again later.", "server_error")
    fake.fail_prompt("a cat", *[busy] * 6)
    retrying, refusal = requeued_then_done(
        Session(), "oa", Request(f"a {FORBIDDEN} dog", seed=2), output_dir
    )
    assert "safety system refused the request (moderation_blocked" in refusal
    assert "is failing (HTTP 503: The engine is currently overloaded" in retrying
    prompts = [r.json["prompt"] for r in fake.generations]
    assert prompts.count("a cat") == 7  # 6 answered 503, then the image
    assert prompts.count(f"a {FORBIDDEN} dog") == 1
