"""The OpenAI endpoint refuses an over-budget run in OpenAI's error shape: the
official `openai` SDK raises RateLimitError, for generations and for edits,
and the answer tells it not to retry (x-should-retry: false)."""

from __future__ import annotations

import io

import openai
import pytest
from PIL import Image

from tests.helpers import write_config
from tests.web.editor import RUN_CLI
from tests.web.processes import cli_env, serve

pytestmark = pytest.mark.slow

TOKEN = "openai-token-0123456789abcdef"
CONFIG = """
default_backend: paid
output: {{dir: '{out}', preview: off}}
budgets: [{{period: day, limit_usd: 0.04}}]
backends:
  paid: {{type: mock, cost_usd: 0.04}}
  editor: {{type: editor}}
"""


@pytest.fixture
def sdk(isolated_env, output_dir):
    config = write_config(isolated_env, CONFIG.format(out=output_dir))
    process, url = serve(cli_env(config), "--token", TOKEN, cli=RUN_CLI)
    try:
        # max_retries=2: a 429 would be retried, unless the answer says not to.
        with openai.OpenAI(base_url=url + "v1", api_key=TOKEN, max_retries=2) as client:
            yield client
    finally:
        process.stop()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_generations_and_edits_over_budget_raise_rate_limit_error(sdk):
    client = sdk
    first = client.images.generate(model="paid", prompt="a red cube", size="16x16")
    assert first.data[0].imagen["cost_usd"] == 0.04  # the whole day's budget

    with pytest.raises(openai.RateLimitError) as generated:
        client.images.generate(model="paid", prompt="a blue cube", size="16x16")
    with pytest.raises(openai.RateLimitError) as edited:  # price unknown, nothing left
        client.images.edit(
            model="editor", image=("a.png", png(), "image/png"), prompt="night", size="16x16"
        )
    for raised in (generated.value, edited.value):
        assert raised.status_code == 429
        error = raised.body
        assert isinstance(error, dict)
        assert error["type"] == "rate_limit_error" and error["code"] == "budget_exceeded"
        assert error["message"].startswith("over budget: ") and "\n" not in error["message"]
        assert "$0.04" in error["message"]
        assert raised.response.headers["x-should-retry"] == "false"
