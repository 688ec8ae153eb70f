"""Reading predictions and answers without the network: output shapes, data: URLs,
image types, logs, metadata hygiene, and Retry-After."""

from __future__ import annotations

import base64
import email.utils
import time

import pytest

from imagen_core import BackendError
from imagen_replicate.backend import _fetch
from imagen_replicate.outputs import (
    decode_data_url,
    image_type,
    log_progress,
    one_line,
    output_urls,
    safe_input,
    short_url,
    sniff,
)
from imagen_replicate.pacing import Pacing, retry_after_s

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8


@pytest.mark.parametrize(
    ("output", "urls"),
    [
        ("https://replicate.delivery/a.webp", ["https://replicate.delivery/a.webp"]),
        (["https://r/a.png", "https://r/b.png"], ["https://r/a.png", "https://r/b.png"]),
        (["data:image/png;base64,AAAA"], ["data:image/png;base64,AAAA"]),
        ({"images": ["https://r/a.png"], "seed": 3}, ["https://r/a.png"]),
        (None, []),
        ([], []),
        ("a caption, not a file", []),
        (42, []),
    ],
)
def test_output_urls_of_every_shape(output, urls):
    assert output_urls(output) == urls


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


def test_an_output_that_is_not_an_image_is_an_error():
    with pytest.raises(BackendError, match=r"is not an image \(type text/plain\)"):
        _fetch(None, "data:text/plain,hello")  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="broken data: URL"):
        _fetch(None, "data:image/png;base64")  # type: ignore[arg-type]


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


def test_progress_from_the_last_tqdm_bar_in_the_logs():
    logs = (
        "Using seed: 5\n"
        "  0%|          | 0/28 [00:00<?, ?it/s]\r"
        " 46%|████▋     | 13/28 [00:01<00:01, 9.1it/s]\n"
        "not a bar 99/100\n"
    )
    assert log_progress(logs) == (13, 28)
    assert log_progress("Using seed: 5\n") is None
    assert log_progress(None) is None


def test_one_line_joins_replicates_field_list():
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
