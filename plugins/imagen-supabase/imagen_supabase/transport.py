"""HTTP to Supabase: timeouts, bounded retries with backoff, one-line failures.

Every request here is safe to repeat: reads are, uploads never overwrite (a
repeated upload that had landed meets "Duplicate" and takes the next name), and
inserts carry a client-made primary key with ``resolution=ignore-duplicates``, so
a repeated insert whose first attempt had been committed inserts nothing. That
is what lets a dropped connection or a gateway 502/504 (did the server commit or
not?) be retried without ever writing a row twice.

``requests`` is imported here, and this module only when something is sent.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import TYPE_CHECKING, Any

from imagen_core.errors import ImagenError

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from imagen_supabase.credentials import Credentials

# Waiting longer than this for a Retry-After inside one `imagen generate` is worse
# than reporting the failure (the image is safe on disk either way).
MAX_RETRY_AFTER_S = 30.0
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
# A reachable server accepts a connection at once; waiting the whole timeout_s
# (sized for uploading a large image) on a dead host only delays the person.
CONNECT_TIMEOUT_S = 5.0

# Tests replace it to keep the suite fast; nothing else should.
sleep: Callable[[float], None] = time.sleep


class SyncError(ImagenError):
    """Supabase refused or failed a request; the message is one line for the person."""


class Unreachable(SyncError):
    """No answer at all (refused, DNS, timeout): later requests would fail the same way."""


class Transport:
    """A ``requests.Session`` with the auth headers and the retry policy."""

    def __init__(self, credentials: Credentials, *, timeout_s: float, retries: int) -> None:
        import requests

        self.credentials = credentials
        self.timeout_s = timeout_s
        self.retries = retries
        self.session = requests.Session()
        self.session.headers.update(credentials.headers())
        # Supabase refuses secret keys from browser-like user agents; say who we are.
        self.session.headers["User-Agent"] = f"imagen-supabase/{_version()}"

    def request(
        self,
        method: str,
        path: str,
        *,
        status_of: Callable[[requests.Response], int] = lambda r: r.status_code,
        **kwargs: Any,
    ) -> requests.Response:
        """Send ``method`` to ``{SUPABASE_URL}{path}``; retry 429/5xx and lost connections.

        ``status_of`` gives the status that counts (Storage hides the real one in
        its JSON body). Returns the last response, whatever its status; raises
        Unreachable when no response came back."""
        import requests

        url = self.credentials.url + path
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.request(
                    method,
                    url,
                    timeout=(min(CONNECT_TIMEOUT_S, self.timeout_s), self.timeout_s),
                    **kwargs,
                )
            except requests.exceptions.SSLError as exc:
                # A certificate problem does not go away by asking again.
                raise Unreachable(
                    f"Supabase at {self.credentials.url}: TLS failed ({_ssl_reason(exc)})"
                ) from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                if last:
                    raise Unreachable(self._unreachable(exc)) from None
                sleep(backoff(attempt))
                continue
            except requests.RequestException as exc:
                raise SyncError(f"{method} {path}: {_first_line(exc)}") from None
            status = status_of(response)
            if last or not (status == 429 or status >= 500):
                return response
            wait = retry_after(response)
            if wait is not None and wait > MAX_RETRY_AFTER_S:
                return response  # asked to come back much later: report it now
            sleep(backoff(attempt) if wait is None else wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _unreachable(self, exc: Exception) -> str:
        import requests

        text = str(exc).lower()
        if isinstance(exc, requests.ConnectTimeout):
            why = f"no connection within {min(CONNECT_TIMEOUT_S, self.timeout_s):g} s"
        elif isinstance(exc, requests.Timeout):
            why = f"no answer within {self.timeout_s:g} s"
        elif "refused" in text:
            why = "connection refused"
        elif "name or service not known" in text or "nodename nor servname" in text:
            why = "unknown host"
        elif "remotedisconnected" in text or "aborted" in text or "reset" in text:
            why = "the connection was dropped"
        else:
            why = type(exc).__name__
        tries = self.retries + 1
        return f"Supabase at {self.credentials.url} is not reachable ({why}; {tries} attempt(s))"


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return (text[:200] + "…") if len(text) > 200 else text or type(exc).__name__


def _ssl_reason(exc: Exception) -> str:
    """ "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: …" out of the
    pool/adapter/urllib3 wrapping that requests puts around it."""
    import re

    match = re.search(r"\[SSL: [A-Z_]+\][^()'\"]*", str(exc))
    return match.group(0).strip() if match else _first_line(exc)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imagen-supabase")
    except PackageNotFoundError:  # run from a source tree without installing
        return "dev"


def backoff(attempt: int) -> float:
    """0.5 s, 1 s, 2 s … capped, with jitter so that parallel workers spread out."""
    delay = min(BACKOFF_BASE_S * 2**attempt, BACKOFF_MAX_S)
    return float(delay * random.uniform(0.8, 1.2))


def retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
