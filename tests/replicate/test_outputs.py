"""Reading predictions without the network: output shapes, logs, outputs that are
not images. (The helpers it shares with imagen-fal are tested in
tests/core/test_remote.py.)"""

from __future__ import annotations

import pytest

from imagen_core import BackendError
from imagen_replicate.backend import _fetch
from imagen_replicate.outputs import log_progress, output_urls

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


def test_an_output_that_is_not_an_image_is_an_error():
    with pytest.raises(BackendError, match=r"is not an image \(type text/plain\)"):
        _fetch(None, "data:text/plain,hello")  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="broken data: URL"):
        _fetch(None, "data:image/png;base64")  # type: ignore[arg-type]


def test_progress_from_the_logs_string():
    assert log_progress("  46%|####      | 13/28 [00:01<00:01, 9.1it/s]\n") == (13, 28)
    assert log_progress(None) is None
