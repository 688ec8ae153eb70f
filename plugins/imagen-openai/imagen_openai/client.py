"""OpenAI's Images API over ``requests``: one POST per image, and the download of a
DALL-E URL answer.

Every call runs in a helper thread while this thread waits in short slices
(Pacing.wait): Ctrl-C, a canceled worker job and ``timeout_s`` are noticed within
a slice, not after a generation that may take minutes. Abandoning a call shuts
its connection down, so the server sees the hang-up (imagen serve stops the
generation then; OpenAI offers no way to cancel an image request).

Retries follow the official SDK: 408, 409, 429 and 5xx, with ``x-should-retry``
overriding and ``retry-after-ms``/``retry-after`` honoured, except a 429 that
says the quota is used up (retrying cannot help) and a gateway's timeout (504,
524: the image may still be made and billed). A network error is retried only
when the request never left (connection refused, unknown host): a connection
lost after sending may have cost an image. The GET of a DALL-E image URL only
fetches an image already made and paid for: it is retried on any 408, 409,
429 or 5xx (504 and 524 too) and on a connection lost mid-answer, since
giving up there loses the image, not a second charge.

The same rule decides whether ``imagen worker`` may run a failed job again (see
``retryable``): only where a second request cannot pay for an image twice.

The key is kept only to be sent (to base_url's host, never to an image URL's
other host) and scrubbed: no repr shows it, and server text is scrubbed of it
before it reaches a message.
"""

from __future__ import annotations

import functools
import socket
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from imagen_core import BackendError, BackendUnavailable
from imagen_core.remote import (
    maybe_sent,
    network_reason,
    one_line,
    send_retrying,
    user_agent,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from imagen_openai.pacing import Pacing

CONNECT_TIMEOUT_S = 10.0
DOWNLOAD_TIMEOUT_S = 60.0
_RETRIED = frozenset({408, 409, 429})
# A gateway that gave up waiting (nginx's 504, Cloudflare's 524): OpenAI may still
# make the image and bill it, as after a read timeout, so it is never sent again.
GATEWAY_TIMEOUTS = frozenset({504, 524})
# A 429 whose quota is used up: type insufficient_quota, with one of these codes.
QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "billing_hard_limit_reached",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
    }
)


@attrs.frozen
class Answer:
    """One HTTP answer, read whole: status, headers (lower-case names), JSON body."""

    status: int
    headers: dict[str, str]
    body: Any
    text: str

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    @property
    def error(self) -> dict[str, Any]:
        """The ``error`` object of OpenAI's envelope (``{"error": {message, type, param,
        code}}``); a compatible server's plain ``{"error": "text"}`` becomes its message."""
        body = self.body
        if isinstance(body, dict):
            inner = body.get("error")
            if isinstance(inner, dict):
                return inner
            if isinstance(inner, str):
                return {"message": body.get("message") or inner, "code": None}
            if isinstance(body.get("detail"), str):  # FastAPI-style servers
                return {"message": body["detail"]}
        return {}

    @property
    def code(self) -> str | None:
        code = self.error.get("code")
        return str(code) if code is not None else None

    @property
    def quota_used_up(self) -> bool:
        """A 429 (or any answer) saying the account's credit or budget is spent."""
        return self.code in QUOTA_CODES or self.error.get("type") == "insufficient_quota"

    @property
    def retryable(self) -> bool:
        """Whether this answer may be different when the same request is sent again
        and sending it cannot pay twice: what the client retries, and what
        ``imagen worker`` runs again once the retries are spent. The Images API is
        one synchronous request; an answer of 408, 409, 429 or 5xx carries no image
        and no usage, and OpenAI bills the usage of an image it returned, so a
        second request pays for one image at most. Not a used-up quota (it stays
        used up), and not a gateway's timeout (504, 524): the server behind it may
        still finish the image and bill it."""
        should = self.headers.get("x-should-retry", "").strip().lower()
        if should in ("true", "false"):
            return should == "true"
        if self.status in GATEWAY_TIMEOUTS or (self.status == 429 and self.quota_used_up):
            return False
        return self.status in _RETRIED or self.status >= 500


class OutOfTime(Exception):
    """The overall deadline passed while waiting for an answer."""


class OpenAIClient:
    def __init__(
        self,
        base_url: str,
        key: str | None,
        *,
        service: str,
        pacing: Pacing,
        deadline: float,
    ) -> None:
        import requests  # here, not at import: `imagen --help` imports every plugin

        self.base_url = base_url
        self.service = service
        self.pacing = pacing
        self.deadline = deadline
        self.retried = 0
        self._scrub_value = key or ""
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent("imagen-openai")
        adapter = _tracking_adapter(self._track)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._api_headers = {"Authorization": f"Bearer {key}"} if key else {}

    def __repr__(self) -> str:
        return f"OpenAIClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------ endpoints

    def post(
        self,
        path: str,
        *,
        doing: str,
        json: Any = None,
        data: list[tuple[str, str]] | None = None,
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
    ) -> Answer:
        """POST to ``base_url + path``, retried as the SDK would; the final answer,
        whatever its status (the caller names the failure: it knows the request)."""
        return self._send(
            "POST", self.base_url + path, doing=doing, json=json, data=data, files=files
        )

    def download(self, url: str) -> tuple[bytes, str | None]:
        """A DALL-E answer's image URL (valid for an hour), fetched at once. The key
        goes only to base_url's own host, never to the storage host of the URL."""
        same_host = urlsplit(url).netloc == urlsplit(self.base_url).netloc
        answer = self._send(
            "GET",
            url,
            doing="downloading the image",
            headers=None if same_host else {},
            timeout_s=DOWNLOAD_TIMEOUT_S,
            raw=True,
            made=True,
        )
        if answer.status != 200:
            raise BackendError(
                f"{self.service} made the image but its URL answered HTTP {answer.status} "
                f"({self.scrub(one_line(answer.text, 200)) or 'no detail'}); image URLs expire "
                "after an hour: run the generation again"
            )
        if not answer.body:
            raise BackendError(f"{self.service}'s image URL {self.scrub(_short(url))} is empty")
        return answer.body, answer.headers.get("content-type")

    # ------------------------------------------------------------ transport

    def _send(
        self,
        method: str,
        url: str,
        *,
        doing: str,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
        raw: bool = False,
        made: bool = False,
        **body: Any,
    ) -> Answer:
        import requests

        headers = self._api_headers if headers is None else headers
        sends = 0

        def send() -> requests.Response:
            nonlocal sends
            self.retried, sends = sends, sends + 1
            remaining = self.deadline - self.pacing.clock()
            # A backstop for the helper thread: the waiting thread keeps the deadline.
            timeout = (CONNECT_TIMEOUT_S, max(1.0, min(timeout_s or remaining, remaining) + 5.0))
            try:
                return self._interruptible(
                    functools.partial(
                        self._session.request, method, url, headers=headers, timeout=timeout, **body
                    )
                )
            except requests.RequestException as exc:
                # Not retried when it may have made (and billed) an image; a GET
                # fetches what exists, so sending it again costs nothing.
                if method != "GET" and maybe_sent(exc):
                    raise BackendError(self._broken(url, doing, exc, method)) from None
                raise

        response = send_retrying(
            send,
            retry_when=_retry_fetch if method == "GET" else _retry,
            retry_network=True,  # only what never left: send() raised the rest
            pacing=self.pacing,
            until=self.deadline,
            unreachable=lambda exc: self._never_sent(url, doing, exc, made=made),
        )
        return _read(response, raw=raw)

    def _interruptible(self, call: Callable[[], requests.Response]) -> requests.Response:
        """Run ``call`` in a helper thread; wait for it in slices. On Ctrl-C, a
        canceled job or the deadline, shut its connection down and raise."""
        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append((True, call()))
            except BaseException as exc:  # handed to the waiting thread
                outcome.append((False, exc))
            finally:
                done.set()

        thread = threading.Thread(target=run, name="imagen-openai-request", daemon=True)
        thread.start()
        try:
            while not self.pacing.wait(done, self.pacing.wait_slice_s):
                if self.pacing.clock() >= self.deadline:
                    raise OutOfTime
        except BaseException:
            self.hang_up()
            raise
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _track(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)

    def hang_up(self) -> None:
        """Shut down every connection this client opened: the request in flight ends
        on both sides (the server sees the client go)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            sock = getattr(connection, "sock", None)
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ------------------------------------------------------------ messages

    def scrub(self, text: str) -> str:
        return text.replace(self._scrub_value, "***") if self._scrub_value else text

    def _place(self, url: str) -> str:
        """The server named with its address: ``OpenAI at https://api.openai.com``."""
        parts = urlsplit(url)
        address = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        if parts.netloc != urlsplit(self.base_url).netloc:
            return f"the image host {address}"
        return f"{self.service} at {address}" if self.service == "OpenAI" else self.service

    def _never_sent(self, url: str, doing: str, exc: Exception, *, made: bool) -> BackendError:
        """A request that never left (refused, unknown host, connect timeout), after
        the retries. For the API: BackendUnavailable, so that ``imagen worker`` gives
        the job back and waits for the server; nothing was made. When the image is
        ``made`` (a DALL-E image URL), it is billed: final."""
        if made:
            return BackendError(
                self.scrub(
                    f"{self._place(url)} is not reachable while {doing} "
                    f"({network_reason(exc)}); the image was made and may be billed: its URL "
                    "expires after an hour"
                )
            )
        return BackendUnavailable(
            self.scrub(
                f"{self._place(url)} is not reachable while {doing} ({network_reason(exc)}); "
                "check the network, or base_url in the backend's block"
            )
        )

    def _broken(self, url: str, doing: str, exc: Exception, method: str) -> str:
        text = f"the connection to {self._place(url)} broke while {doing} ({network_reason(exc)})"
        if method == "POST":
            text += "; not retried, as the image may have been made and billed"
        return self.scrub(text)


def _retry(response: requests.Response) -> bool:
    """Whether the SDK would send this again (``x-should-retry`` decides when
    given, else 408, 409, 429 and 5xx), unless that could pay twice or cannot
    help: see ``Answer.retryable``."""
    return _read(response, raw=False).retryable


def _retry_fetch(response: requests.Response) -> bool:
    """Whether to fetch an image URL again: any answer that may pass later (408,
    409, 429, 5xx, a gateway's 504 and 524 included); the image exists already."""
    return response.status_code in _RETRIED or response.status_code >= 500


def _read(response: requests.Response, *, raw: bool) -> Answer:
    headers = {k.lower(): v for k, v in response.headers.items()}
    if raw and response.status_code == 200:
        return Answer(response.status_code, headers, response.content, "")
    text = response.text
    try:
        body = response.json()
    except ValueError:
        body = None
    return Answer(response.status_code, headers, body, text)


def _tracking_adapter(track: Callable[[Any], None]) -> Any:
    """A requests adapter whose connections report themselves when they connect,
    so that a call given up on can be shut down from the waiting thread."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Plain(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            track(self)

    class Secure(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            track(self)

    class PlainPool(HTTPConnectionPool):
        ConnectionCls = Plain

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = Secure

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": PlainPool, "https": SecurePool}

    # No retries of urllib3's own: _send decides.
    return Adapter(max_retries=0)


def _short(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
