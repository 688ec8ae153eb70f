"""Reading a prediction: its output URLs, data: URLs, image types, logs, and what of
it is safe to keep in a sidecar. Pure functions, no network."""

from __future__ import annotations

from typing import Any

from imagen_core.remote import (
    decode_data_url,
    image_type,
    one_line,
    safe_input,
    short_url,
    sniff,
    tqdm_progress,
)

__all__ = [
    "decode_data_url",
    "image_type",
    "log_progress",
    "one_line",
    "output_urls",
    "safe_input",
    "short_url",
    "sniff",
]

# The output field differs per model: one URL string (flux-1.1-pro, sd3.5), a list
# of them (flux-schnell/dev), occasionally data: URLs; models outside the families
# may nest them in a mapping. Every URL found, in order.
_URL_PREFIXES = ("https://", "http://", "data:")


def output_urls(output: Any) -> list[str]:
    if isinstance(output, str):
        return [output] if output.startswith(_URL_PREFIXES) else []
    if isinstance(output, list):
        return [url for item in output for url in output_urls(item)]
    if isinstance(output, dict):
        return [url for item in output.values() for url in output_urls(item)]
    return []


def log_progress(logs: Any) -> tuple[int, int] | None:
    """(done, total) of the last progress bar in a prediction's logs (one string;
    Replicate has no progress field), if any."""
    return tqdm_progress(logs) if isinstance(logs, str) else None
