"""What every backend of a web service needs, in one place: how long to wait
between polls and retries (honouring Retry-After), network errors in a few words,
server text on one line, and the type of an output from its bytes or data: URL.

Pure functions and one frozen value; ``requests`` is imported only inside the
two functions that look at its exceptions, so importing this module is cheap.
imagen-replicate and imagen-fal build their clients on it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlsplit

import attrs

if TYPE_CHECKING:
    import requests


@attrs.frozen
class Pacing:
    """The numbers and the ``sleep``/``clock`` functions of polling and retrying,
    together, so tests replace them at once and run every retry and timeout path
    in milliseconds."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Polling: start at 0.5 s and back off gently, so a slow cold start does
    # not cost hundreds of requests.
    poll_first_s: float = 0.5
    poll_factor: float = 1.5
    poll_max_s: float = 5.0
    # Retries of one request on 429/5xx: at most this many after the first try,
    # each wait (Retry-After included) at most retry_max_s.
    retries: int = 5
    retry_first_s: float = 1.0
    retry_max_s: float = 60.0
    # Once the image is in hand, how long to wait for final metrics.
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


def send_retrying(
    send: Callable[[], requests.Response],
    *,
    retry_when: Callable[[requests.Response], bool],
    retry_network: bool,
    pacing: Pacing,
    until: float | None,
    unreachable: Callable[[Exception], Exception],
) -> requests.Response:
    """``send()`` once, and again while ``retry_when`` says so of its answer (and
    on network errors when ``retry_network``), with backoff honouring Retry-After,
    within the pacing's retry budget and never waiting past ``until``. A network
    error that is not retried raises ``unreachable(exc)``; an answer that is not
    retried is returned for the caller to judge."""
    import requests

    attempt = 0
    while True:
        try:
            response = send()
        except requests.RequestException as exc:
            error = unreachable(exc)
            if not retry_network or attempt >= pacing.retries:
                raise error from None
            delay = pacing.retry_delay(attempt, None)
            last: Exception | requests.Response = error
        else:
            if not retry_when(response) or attempt >= pacing.retries:
                return response
            delay = pacing.retry_delay(
                attempt, retry_after_s(response.headers, json_body(response))
            )
            last = response
        if until is not None and pacing.clock() + delay > until:
            # No time left to wait: the last answer stands.
            if isinstance(last, Exception):
                raise last
            return last
        pacing.sleep(delay)
        attempt += 1


def json_body(response: requests.Response) -> Any:
    """The answer's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def user_agent(distribution: str) -> str:
    """``name/version`` of the installed distribution, for the User-Agent header."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{distribution}/{version(distribution)}"
    except PackageNotFoundError:  # running from a source tree
        return distribution


# 429 bodies say when to come back in words when Retry-After is missing:
# "Expected available in 1 second." / "Your rate limit resets in ~30s."
_IN_SECONDS = re.compile(r"\bin ~?(\d+(?:\.\d+)?)\s*s(?:ec(?:ond)?s?)?\b", re.I)


def retry_after_s(headers: Mapping[str, str], body: Any) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms`` (OpenAI's, which its
    SDK reads first), the Retry-After header (seconds or an HTTP date), else
    ``retry_after`` in the JSON body, else the detail text."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
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


def decode_data_url(url: str) -> tuple[bytes, str | None]:
    """The bytes and media type of a ``data:`` URL (RFC 2397)."""
    header, comma, payload = url.partition(",")
    if not comma:
        raise ValueError("a data: URL without a comma")
    params = header.removeprefix("data:").split(";")
    media_type = params[0].strip().lower() or None
    if "base64" in (p.strip().lower() for p in params[1:]):
        try:
            return base64.b64decode(payload, validate=False), media_type
        except binascii.Error as exc:
            raise ValueError(f"bad base64 in a data: URL ({exc})") from None
    return unquote_to_bytes(payload), media_type


_SUFFIX_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}


def sniff(data: bytes) -> str | None:
    """The image type from the first bytes, for when no header or suffix names it."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def image_type(declared: str | None, url: str, data: bytes) -> str | None:
    """The image's MIME type: the declared one (Content-Type, or a data: URL's media
    type) when it is an image type, else the URL's suffix, else the bytes; None when
    nothing says it is an image."""
    if declared:
        kind = declared.split(";")[0].strip().lower()
        kind = _ALIASES.get(kind, kind)
        if kind.startswith("image/"):
            return kind
    if not url.startswith("data:"):
        path = urlsplit(url).path.lower()
        for suffix, kind in _SUFFIX_TYPES.items():
            if path.endswith(suffix):
                return kind
    return sniff(data)


def short_url(url: str) -> str:
    """A URL fit for a sidecar: a data: URL is replaced by its type and size."""
    if not url.startswith("data:"):
        return url
    header = url.partition(",")[0]
    return f"{header},... ({len(url)} characters)"


def one_line(text: str, limit: int = 400) -> str:
    """Server text as one line: validation details often list fields on lines of
    their own."""
    parts = [p.strip(" -") for p in str(text).splitlines()]
    line = "; ".join(p for p in parts if p)
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def maybe_sent(exc: Exception) -> bool:
    """Whether a request that failed this way may have been executed: not when the
    connection was never made (refused, unknown host, connect timeout)."""
    import requests

    if isinstance(exc, requests.ConnectTimeout):
        return False
    text = str(exc)
    return not any(
        sign in text
        for sign in ("NewConnectionError", "NameResolutionError", "Failed to resolve", "refused")
    )


def network_reason(exc: Exception) -> str:
    """A few words for a network error: requests' own text is a paragraph."""
    import requests

    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    if errno:
        return errno[1].strip().lower()
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


# Some models take credentials as inputs (hf_api_token, api_key, ...): their
# values must never reach a sidecar.
_SECRET_KEY = re.compile(r"token|secret|password|passwd|api_?key|credential|auth", re.I)


def safe_input(sent: dict[str, Any]) -> dict[str, Any]:
    """A model input as kept in metadata: no prompt (the sidecar has it as
    prompt_sent), secret-looking values masked, data: URLs shortened (also inside
    lists, as image_urls are)."""
    kept: dict[str, Any] = {}
    for key, value in sent.items():
        if key == "prompt":
            continue
        if _SECRET_KEY.search(key):
            kept[key] = "***"
        elif isinstance(value, str):
            kept[key] = short_url(value)
        elif isinstance(value, list):
            kept[key] = [short_url(v) if isinstance(v, str) else v for v in value]
        else:
            kept[key] = value
    return kept


# tqdm's bar as models print it: " 45%|████▌     | 9/20 [00:01<00:01, 8.1it/s]".
# No image service has a progress field; this is what replicate-python parses too.
_TQDM = re.compile(r"^\s*(\d+)%\s*\|.+?\|\s*(\d+)/(\d+)")


def tqdm_progress(text: str) -> tuple[int, int] | None:
    """(done, total) of the last tqdm progress bar in log text, if any."""
    for line in reversed(re.split(r"[\r\n]", text)):
        match = _TQDM.match(line)
        if match:
            done, total = int(match[2]), int(match[3])
            if 0 <= done <= total and total > 0:
                return done, total
    return None
