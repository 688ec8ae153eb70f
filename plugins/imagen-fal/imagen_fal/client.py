"""fal's queue API over ``requests``: submit, status, result, cancel, download.

Every failure becomes a one-line BackendError naming what to do. Retries follow
one rule: a request is repeated only when repeating it cannot cost money twice.
Status polls, result fetches, cancels and downloads are retried on 429, 5xx and
network errors; the submit POST only on 429, and on a 502/503/504 that carries no
``x-fal-request-id`` and is nginx's page (an error of fal's ingress, before the
queue: what fal's own client retries). Any other 5xx or a lost connection on
submit is reported, never retried, as the request may be queued.

The key lives only in the session's headers: it is in no attribute a repr shows,
it goes to queue hosts only (never to the file CDN), and server text is scrubbed
of it before it reaches a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import attrs

from imagen_core import BackendError, BackendUnavailable
from imagen_core.errors import transient_status
from imagen_core.remote import (
    Pacing,
    json_body,
    maybe_sent,
    network_reason,
    one_line,
    send_retrying,
    user_agent,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
DOWNLOAD_TIMEOUT_S = 60.0
KEYS_PAGE = "https://fal.ai/dashboard/keys"
BILLING_PAGE = "https://fal.ai/dashboard/billing"
DASHBOARD = "https://fal.ai/dashboard"
# Queue URLs that may receive the key besides base_url's own host.
_TRUSTED_SUFFIXES = ("fal.run",)
_RETRIED = frozenset({429, 500, 502, 503, 504})
_INGRESS = frozenset({502, 503, 504})


@attrs.frozen
class Submitted:
    """fal's answer to a submit: the request id and where to ask about it."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str
    queue_position: int | None = None


class FalClient:
    def __init__(
        self, base_url: str, key: str, *, key_env: str, pacing: Pacing, deadline: float
    ) -> None:
        import requests  # here, not at import: `imagen --help` imports every plugin

        self.base_url = base_url
        self.key_env = key_env
        self.pacing = pacing
        self.deadline = deadline
        self._scrub_value = key
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent("imagen-fal")
        self._api_headers = {"Authorization": f"Key {key}"}
        self._cdn: tuple[str, str] | None = None  # (Authorization, upload root) once asked

    def __repr__(self) -> str:
        return f"FalClient(base_url={self.base_url!r}, key_env={self.key_env!r})"

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------ endpoints

    def submit(
        self, endpoint: str, model_input: dict[str, Any], *, start_timeout_s: int
    ) -> Submitted:
        """POST the input to the endpoint's queue."""
        headers = {
            **self._api_headers,
            # A server-side deadline as a backstop: should the answer to this POST be
            # lost (Ctrl-C), we never learn the id to cancel; fal drops a request
            # that has not started by then.
            "X-Fal-Request-Timeout": str(start_timeout_s),
        }
        response = self._send(
            "POST",
            f"{self.base_url}/{quote(endpoint, safe='/')}",
            headers=headers,
            json=model_input,
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            retry_when=_submit_retried,
            retry_network=False,
            doing=f"submitting to {endpoint}",
            again=True,  # unless it may have been sent: see _network_error
        )
        if not 200 <= response.status_code < 300:
            raise self._submit_failure(response, endpoint)
        data = json_body(response)
        if not isinstance(data, dict) or not isinstance(data.get("request_id"), str):
            raise BackendError(
                f"fal answered HTTP {response.status_code} with something that is not a queued "
                f"request: {self._scrub(one_line(response.text, 200))}; check base_url"
            )
        request_id = data["request_id"]
        fallback = self._request_url(endpoint, request_id)
        position = data.get("queue_position")
        return Submitted(
            request_id=request_id,
            status_url=self._queue_url(data.get("status_url"), fallback + "/status"),
            response_url=self._queue_url(data.get("response_url"), fallback),
            cancel_url=self._queue_url(data.get("cancel_url"), fallback + "/cancel"),
            queue_position=position if isinstance(position, int) else None,
        )

    def status(self, submitted: Submitted) -> dict[str, Any]:
        """The request's status object, with its logs."""
        doing = f"polling request {submitted.request_id}"
        response = self._send(
            "GET",
            submitted.status_url,
            headers=self._api_headers,
            params={"logs": "1"},
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            retry_when=_retried,
            retry_network=True,
            doing=doing,
            again=True,  # the backend cancels the request, or makes it permanent
        )
        if not 200 <= response.status_code < 300:  # 202 while queued or running
            raise self.failure(response, doing, again=True)
        data = json_body(response)
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise BackendError(
                f"fal answered HTTP {response.status_code} with something that is not a request "
                f"status: {self._scrub(one_line(response.text, 200))}; check base_url"
            )
        return data

    def result(self, submitted: Submitted, *, failed: bool) -> requests.Response:
        """The answer of the response URL: the model's output, or the model's error.
        A request fal says failed is fetched once, for its error: retrying its 5xx
        would only ask again for the same answer."""
        return self._send(
            "GET",
            submitted.response_url,
            headers=self._api_headers,
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            retry_when=_never if failed else _retried,
            retry_network=True,
            doing=f"fetching the result of request {submitted.request_id}",
            # A failed run is not billed; a finished one may be, and is not run twice.
            again=failed,
        )

    def cancel(self, submitted: Submitted) -> str:
        """Ask fal to cancel; fal's answer: CANCELLATION_REQUESTED (202, queued or
        running) or ALREADY_COMPLETED (400). It runs after Ctrl-C, so its retries
        are few and short."""
        doing = f"cancelling request {submitted.request_id}"
        response = self._send(
            "PUT",
            submitted.cancel_url,
            headers=self._api_headers,
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            retry_when=_retried,
            retry_network=True,
            doing=doing,
            again=False,
            pacing=attrs.evolve(self.pacing, retries=2, retry_max_s=5.0),
            use_deadline=False,
        )
        body = json_body(response)
        state = body.get("status") if isinstance(body, dict) else None
        if response.status_code in (200, 202) or (
            response.status_code == 400 and state == "ALREADY_COMPLETED"
        ):
            return str(state or "CANCELLATION_REQUESTED")
        raise self.failure(response, doing, again=False)

    def upload(self, data: bytes, mime_type: str, name: str, *, storage_url: str) -> str:
        """Put an input file on fal's storage, as fal's client does: a CDN token from
        the storage API (with the key), then the bytes to the CDN (with the token).
        The URL it answers is what the model input names."""
        if self._cdn is None:
            doing = "getting an upload token from fal's storage"
            response = self._send(
                "POST",
                f"{storage_url}/storage/auth/token",
                headers=self._api_headers,
                params={"storage_type": "fal-cdn-v3"},
                json={},
                timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                retry_when=_retried,
                retry_network=True,
                doing=doing,
                again=True,  # before the submit: nothing is queued yet
            )
            token = json_body(response) if response.status_code == 200 else None
            if not isinstance(token, dict) or not all(
                isinstance(token.get(k), str) for k in ("token", "token_type", "base_url")
            ):
                raise self.failure(response, doing, again=True)
            self._cdn = (f"{token['token_type']} {token['token']}", token["base_url"].rstrip("/"))
        authorization, cdn = self._cdn
        doing = f"uploading {name} to fal's storage"
        response = self._send(
            "POST",
            f"{cdn}/files/upload",
            headers={
                "Authorization": authorization,
                "Content-Type": mime_type,
                "X-Fal-File-Name": name,
            },
            data=data,
            timeout=(CONNECT_TIMEOUT_S, DOWNLOAD_TIMEOUT_S),
            retry_when=_retried,  # a second copy of a file costs nothing
            retry_network=True,
            doing=doing,
            again=True,
        )
        answer = json_body(response) if response.status_code == 200 else None
        if not isinstance(answer, dict) or not isinstance(answer.get("access_url"), str):
            raise self.failure(response, doing, again=True)
        return str(answer["access_url"])

    def download(self, url: str) -> tuple[bytes, str | None]:
        """An output file's bytes and its Content-Type. fal's files are on its public
        CDN (*.fal.media): no key is sent."""
        response = self._send(
            "GET",
            url,
            headers={},
            timeout=(CONNECT_TIMEOUT_S, DOWNLOAD_TIMEOUT_S),
            retry_when=_retried,
            retry_network=True,
            doing="downloading the output",
            again=False,  # the image is made and paid for: never run twice
        )
        if response.status_code in (403, 404, 410):
            raise BackendError(
                f"fal's output file is gone (HTTP {response.status_code} for "
                f"{self._scrub(url)}); run the generation again"
            )
        if response.status_code != 200:
            raise self.failure(response, "downloading the output", again=False)
        if not response.content:
            raise BackendError(f"fal's output file {self._scrub(url)} is empty")
        return response.content, response.headers.get("Content-Type")

    # ------------------------------------------------------------ transport

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        timeout: tuple[float, float],
        retry_when: Callable[[requests.Response], bool],
        retry_network: bool,
        doing: str,
        json: Any = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
        again: bool,
        pacing: Pacing | None = None,
        use_deadline: bool = True,
    ) -> requests.Response:
        """One request, repeated while ``retry_when`` says so (and on network errors
        when ``retry_network``), within the pacing's budget and before the deadline.
        ``again``: whether the job may be run again should it fail on the network
        (nothing billable can exist yet)."""
        return send_retrying(
            lambda: self._session.request(
                method, url, headers=headers, json=json, data=data, params=params, timeout=timeout
            ),
            retry_when=retry_when,
            retry_network=retry_network,
            pacing=pacing or self.pacing,
            until=self.deadline if use_deadline else None,
            unreachable=lambda exc: self._network_error(url, doing, exc, again=again),
        )

    def _request_url(self, endpoint: str, request_id: str) -> str:
        """The queue URL of a request, as fal's client rebuilds it: owner/alias only
        (the endpoint's subpath is used on submit alone)."""
        parts = endpoint.split("/")
        keep = 3 if parts[0] in ("workflows", "comfy") else 2
        app = "/".join(quote(p, safe="") for p in parts[:keep])
        return f"{self.base_url}/{app}/requests/{quote(request_id, safe='')}"

    def _queue_url(self, given: Any, fallback: str) -> str:
        """A URL from fal's answer, when it points at a host that may get the key."""
        if isinstance(given, str) and given.startswith(("https://", "http://")):
            host = (urlsplit(given).hostname or "").lower()
            ours = (urlsplit(self.base_url).hostname or "").lower()
            if host == ours or any(host == s or host.endswith("." + s) for s in _TRUSTED_SUFFIXES):
                return given
        return fallback

    # ------------------------------------------------------------ messages

    def _scrub(self, text: str) -> str:
        secrets = [self._scrub_value, self._cdn[0].partition(" ")[2] if self._cdn else ""]
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def detail(self, response: requests.Response) -> str:
        """fal's error text, one line: ``detail`` as a string (request errors), or
        each entry of a ``detail`` list as ``field: msg`` (validation errors)."""
        body = json_body(response)
        text = ""
        if isinstance(body, dict):
            detail = body.get("detail")
            if isinstance(detail, list):
                text = "; ".join(_validation(item) for item in detail)
            elif detail:
                text = str(detail)
            elif body.get("error"):
                text = str(body["error"])
        if not text:
            text = response.text or response.reason or ""
        return self._scrub(one_line(text)) or "no detail given"

    def _network_error(self, url: str, doing: str, exc: Exception, *, again: bool) -> BackendError:
        """A network failure (after the retries): BackendUnavailable when the
        connection was never made and running the job again costs nothing twice
        (the worker then waits for fal); transient when ``again``, except on a
        submit that may have reached fal; else permanent."""
        text = self._unreachable(url, doing, exc)
        if again and not maybe_sent(exc):
            return BackendUnavailable(text)
        return BackendError(text, transient=again and not doing.startswith("submitting"))

    def _unreachable(self, url: str, doing: str, exc: Exception) -> str:
        parts = urlsplit(url)
        text = (
            f"fal at {parts.scheme}://{parts.netloc} is not reachable while {doing} "
            f"({network_reason(exc)})"
        )
        if doing.startswith("submitting") and maybe_sent(exc):
            text += (
                f"; the request may have reached fal, so check its requests at {DASHBOARD} "
                "before trying again"
            )
        else:
            setting = "base_url" if url.startswith(self.base_url) else "storage_url"
            text += f"; check the network, or {setting} in the backend's block"
        return self._scrub(text)

    def _submit_failure(self, response: requests.Response, endpoint: str) -> BackendError:
        status, detail = response.status_code, self.detail(response)
        if status == 404:
            return BackendError(
                f"fal has no endpoint {endpoint} (HTTP 404: {detail}); check `model` in the "
                "backend's block (an endpoint id from https://fal.ai/models)"
            )
        if status == 422:
            return BackendError(
                f"fal refused the input for {endpoint}: {detail} (HTTP 422); "
                + refusal_fix(response)
            )
        if status >= 500 and not _ingress_error(response):
            return BackendError(
                f"fal failed while submitting to {endpoint} (HTTP {status}: {detail}); not "
                f"retried, so that nothing is paid twice: check its requests at {DASHBOARD} "
                "before trying again"
            )
        # 429, and an error of fal's ingress: nothing was queued.
        return self.failure(response, f"submitting to {endpoint}", again=True)

    def failure(self, response: requests.Response, doing: str, *, again: bool) -> BackendError:
        """One line for an answer that is not what was asked for. A 408, 429 or 5xx
        is transient when ``again``: running the job again costs nothing twice."""
        status, detail = response.status_code, self.detail(response)
        transient = again and transient_status(status)
        if status == 401:
            return BackendError(
                f"fal rejected the key in {self.key_env} (HTTP 401: {detail}); set a valid API "
                f"key from {KEYS_PAGE}"
            )
        if status == 403:
            if "balance" in detail.lower() or "locked" in detail.lower():
                return BackendError(
                    f"fal refused the request: {detail} (HTTP 403); add credit at {BILLING_PAGE}"
                )
            return BackendError(
                f"fal refused access while {doing} (HTTP 403: {detail}); check that the key in "
                f"{self.key_env} belongs to an account that may do this"
            )
        if status == 429:
            return BackendError(
                f"fal is rate limiting us while {doing} (HTTP 429: {detail}), still after "
                f"{self.pacing.retries} retries; wait a minute and try again",
                transient=transient,
            )
        if status >= 500:
            return BackendError(
                f"fal is failing while {doing} (HTTP {status}: {detail}); try again later",
                transient=transient,
            )
        return BackendError(
            f"fal answered HTTP {status} while {doing}: {detail}", transient=transient
        )


def _retried(response: requests.Response) -> bool:
    # A 504 for a deadline the caller set (X-Fal-Request-Timeout) is an answer, not a
    # hiccup: fal marks it with X-Fal-Request-Timeout-Type, and its client does not
    # retry it either.
    if response.status_code == 504 and response.headers.get("X-Fal-Request-Timeout-Type"):
        return False
    return response.status_code in _RETRIED


def _never(_response: requests.Response) -> bool:
    return False


def _ingress_error(response: requests.Response) -> bool:
    """A 502/503/504 of the nginx in front of fal, before the queue: no fal request
    id on it and nginx's page as the body (fal's client tells them apart so)."""
    return (
        response.status_code in _INGRESS
        and "x-fal-request-id" not in response.headers
        and "nginx" in response.text
    )


def _submit_retried(response: requests.Response) -> bool:
    return response.status_code == 429 or _ingress_error(response)


def refusal_fix(response: requests.Response) -> str:
    """What to do about a 422: fal's ``detail`` entries carry a machine ``type``;
    a safety refusal wants another prompt, any other a changed input."""
    body = json_body(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    kinds = (
        [str(e.get("type", "")) for e in detail if isinstance(e, dict)]
        if isinstance(detail, list)
        else []
    )
    if any("content_policy" in kind or "safety" in kind for kind in kinds):
        return "reword the prompt or change the input images"
    return "change those inputs (the request's options, or `extra:` in the backend's block)"


def _validation(item: Any) -> str:
    """One entry of a 422 ``detail`` list: ``image_size: Input should be ...``."""
    if not isinstance(item, dict):
        return str(item)
    loc = item.get("loc")
    where = ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
    msg = str(item.get("msg") or item.get("type") or "invalid")
    return f"{where}: {msg}" if where else msg
