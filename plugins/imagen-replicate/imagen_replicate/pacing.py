"""How long to wait between polls and retries, and the clock it is measured on.

One object holds both the numbers and the ``sleep``/``clock`` functions, so tests
replace them together and run the whole retry and timeout logic in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs


@attrs.frozen
class Pacing:
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Polling: replicate-python polls every 0.5 s; we start there and back off
    # gently, so a slow cold start does not cost hundreds of requests.
    poll_first_s: float = 0.5
    poll_factor: float = 1.5
    poll_max_s: float = 5.0
    # Retries of one request on 429/5xx: at most this many after the first try,
    # each wait (Retry-After included) at most retry_max_s.
    retries: int = 5
    retry_first_s: float = 1.0
    retry_max_s: float = 60.0
    # Once the image is in hand, how long to wait for the final metrics.
    settle_s: float = 10.0

    def poll_delays(self) -> Iterator[float]:
        delay = self.poll_first_s
        while True:
            yield delay
            delay = min(self.poll_max_s, delay * self.poll_factor)

    def retry_delay(self, attempt: int, retry_after_s: float | None) -> float:
        """The wait before retry number ``attempt`` (0-based): what the server asked
        for, else exponential backoff; never more than retry_max_s."""
        if retry_after_s is not None:
            return min(self.retry_max_s, max(0.0, retry_after_s))
        return min(self.retry_max_s, self.retry_first_s * 2.0**attempt)


# 429 bodies say when to come back in words when Retry-After is missing:
# "Expected available in 1 second." / "Your rate limit resets in ~30s."
_IN_SECONDS = re.compile(r"\bin ~?(\d+(?:\.\d+)?)\s*s(?:ec(?:ond)?s?)?\b", re.I)


def retry_after_s(headers: Mapping[str, str], body: Any) -> float | None:
    """Seconds the server asks us to wait: the Retry-After header (seconds or an
    HTTP date), else ``retry_after`` in the JSON body, else the detail text."""
    value = headers.get("Retry-After")
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
    if isinstance(body, dict):
        number = body.get("retry_after")
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return max(0.0, float(number))
        detail = body.get("detail")
        if isinstance(detail, str):
            match = _IN_SECONDS.search(detail)
            if match:
                return float(match[1])
    return None
