"""How long to wait between retries, how long the whole call may take, and the
clock it is measured on.

One object holds the numbers and the ``sleep``/``clock``/``wait`` functions, so
tests replace them together and run the retry and timeout logic without waiting.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import threading
import time
from collections.abc import Callable, Mapping

import attrs


def _wait(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


@attrs.frozen
class Pacing:
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Waiting for an answer: in slices, so that Ctrl-C, a canceled worker job
    # (an exception raised in this thread between two bytecodes) and the
    # timeout are noticed within one slice, never after a long blocking read.
    wait: Callable[[threading.Event, float], bool] = _wait
    wait_slice_s: float = 0.25
    # Retries of one request on 429/5xx: at most this many after the first try,
    # each wait (Retry-After included) at most retry_max_s. The SDK's own
    # backoff starts at 0.5 s and stops at 8 s; image limits are counted per
    # minute, so waits here may be longer.
    retries: int = 5
    retry_first_s: float = 1.0
    retry_max_s: float = 60.0

    def retry_delay(self, attempt: int, asked_s: float | None) -> float:
        """The wait before retry number ``attempt`` (0-based): what the server asked
        for, else exponential backoff; never more than retry_max_s."""
        if asked_s is not None:
            return min(self.retry_max_s, max(0.0, asked_s))
        return min(self.retry_max_s, self.retry_first_s * 2.0**attempt)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_s(text: str) -> float | None:
    """OpenAI's x-ratelimit-reset-* durations: ``12ms``, ``1s``, ``6m0s``, ``1h2m3.5s``."""
    text = text.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait, read as the openai SDK reads them:
    ``retry-after-ms``, then ``retry-after`` (seconds or an HTTP date); else, when a
    rate limit is used up, its ``x-ratelimit-reset-*``."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
    resets = []
    for kind in ("requests", "tokens", "images"):
        if headers.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0":
            reset = duration_s(headers.get(f"x-ratelimit-reset-{kind}", ""))
            if reset is not None:
                resets.append(reset)
    return max(resets) if resets else None
