"""imagen_core.remote: what web-service backends share, without the network:
retry pacing and Retry-After, the retry loop, data: URLs, image types, progress
from logs, metadata hygiene."""

from __future__ import annotations

import base64
import email.utils
import time

import pytest
import requests

from imagen_core.remote import (
    Pacing,
    decode_data_url,
    image_type,
    one_line,
    retry_after_s,
    safe_input,
    send_retrying,
    short_url,
    sniff,
    tqdm_progress,
)
from tests.fake_http import FakeTime

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8


def test_data_urls_base64_and_percent_encoded():
    encoded = base64.b64encode(PNG).decode()
    assert decode_data_url(f"data:image/png;base64,{encoded}") == (PNG, "image/png")
    assert decode_data_url("data:,a%20b") == (b"a b", None)
    with pytest.raises(ValueError, match="without a comma"):
        decode_data_url("data:image/png;base64")


@pytest.mark.parametrize(
    ("declared", "url", "data", "kind"),
    [
        ("image/webp", "https://r/x.png", PNG, "image/webp"),  # the declared type first
        ("image/JPG; charset=binary", "https://r/x", b"", "image/jpeg"),
        ("application/octet-stream", "https://r/x.JPEG?sig=1", b"", "image/jpeg"),
        (None, "https://r/x", PNG, "image/png"),  # the bytes last
        (None, "https://r/x", b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        ("text/html", "https://r/page", b"<html>", None),
        ("image/png", "data:image/png;base64,AA", b"", "image/png"),
    ],
)
def test_image_type(declared, url, data, kind):
    assert image_type(declared, url, data) == kind


def test_sniff():
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff(b"GIF89a...") == "image/gif"
    assert sniff(b"%PDF") is None


def test_metadata_keeps_no_prompt_no_secret_and_no_huge_data_urls():
    long = "data:image/png;base64," + "A" * 10_000
    kept = safe_input(
        {
            "prompt": "a private prompt",
            "api_key": "k",
            "HF_TOKEN": "t",
            "image": long,
            "seed": 3,
            "go_fast": False,
        }
    )
    assert kept == {
        "api_key": "***",
        "HF_TOKEN": "***",
        "image": "data:image/png;base64,... (10022 characters)",
        "seed": 3,
        "go_fast": False,
    }
    assert short_url("https://r/a.png") == "https://r/a.png"


def test_one_line_joins_a_field_list():
    detail = "- input.steps: Must be <= 4\n- input.cfg: Invalid type\n"
    assert one_line(detail) == "input.steps: Must be <= 4; input.cfg: Invalid type"
    assert one_line("x" * 500).endswith("...") and len(one_line("x" * 500)) == 400


@pytest.mark.parametrize(
    ("headers", "body", "seconds"),
    [
        ({"Retry-After": "3"}, None, 3.0),
        ({"Retry-After": "0.5"}, None, 0.5),
        ({"Retry-After": "-4"}, None, 0.0),
        ({}, {"retry_after": 12}, 12.0),
        ({}, {"detail": "Request was throttled. Expected available in 1 second."}, 1.0),
        ({}, {"detail": "Request was throttled. Your rate limit resets in ~30s."}, 30.0),
        ({}, {"detail": "throttled"}, None),
        ({"Retry-After": "soon"}, "not json", None),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, None, 1.5),
        ({"retry-after-ms": "later", "Retry-After": "9"}, None, 9.0),
    ],
)
def test_retry_after(headers, body, seconds):
    assert retry_after_s(headers, body) == seconds


def test_retry_after_as_a_date():
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 18 <= retry_after_s({"Retry-After": when}, None) <= 20
    past = email.utils.formatdate(time.time() - 20, usegmt=True)
    assert retry_after_s({"Retry-After": past}, None) == 0.0


def test_backoff_doubles_and_is_capped():
    pacing = Pacing()
    assert [pacing.retry_delay(n, None) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert pacing.retry_delay(0, 600.0) == 60.0


def test_progress_from_the_last_tqdm_bar():
    logs = (
        "Using seed: 5\n"
        "  0%|          | 0/28 [00:00<?, ?it/s]\r"
        " 46%|████▋     | 13/28 [00:01<00:01, 9.1it/s]\n"
        "not a bar 99/100\n"
    )
    assert tqdm_progress(logs) == (13, 28)
    assert tqdm_progress("Using seed: 5\n") is None


def test_data_urls_inside_lists_are_shortened_too():
    kept = safe_input({"image_urls": ["data:image/png;base64," + "A" * 100, "https://x/a.png"]})
    assert kept == {"image_urls": ["data:image/png;base64,... (122 characters)", "https://x/a.png"]}


class Answer:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code, self.headers = status, headers or {}

    def json(self):
        raise ValueError


def _loop(answers, clock: FakeTime, *, until=None, retry_network=True):
    sent = []

    def send():
        sent.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = send_retrying(
        send,
        retry_when=lambda r: r.status_code >= 500,
        retry_network=retry_network,
        pacing=Pacing(sleep=clock.sleep, clock=clock.clock),
        until=until,
        unreachable=lambda exc: RuntimeError(f"unreachable: {exc}"),
    )
    return result, len(sent)


def test_send_retrying_repeats_while_told_and_honours_retry_after():
    clock = FakeTime()
    answers = [Answer(503, {"Retry-After": "7"}), Answer(500), Answer(200)]
    result, sent = _loop(answers, clock)
    assert result.status_code == 200 and sent == 3 and clock.sleeps == [7.0, 2.0]


def test_send_retrying_returns_the_last_answer_at_the_deadline():
    clock = FakeTime()
    result, sent = _loop(
        [Answer(503, {"Retry-After": "30"}), Answer(200)], clock, until=clock.now + 10
    )
    assert result.status_code == 503 and sent == 1 and clock.sleeps == []


def test_send_retrying_network_errors():
    clock = FakeTime()
    result, sent = _loop([requests.ConnectionError("x"), Answer(200)], clock)
    assert result.status_code == 200 and sent == 2
    with pytest.raises(RuntimeError, match="unreachable: boom"):
        _loop([requests.ConnectionError("boom"), Answer(200)], FakeTime(), retry_network=False)
    with pytest.raises(RuntimeError, match="unreachable"):
        _loop([requests.ConnectionError("x")] * 6, FakeTime())  # the budget: 1 + 5 tries
