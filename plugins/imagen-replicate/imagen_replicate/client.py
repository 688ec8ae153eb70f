"""Replicate's HTTP API over ``requests``: create, get, cancel, download.

Every failure becomes a one-line BackendError naming what to do. Retries follow
one rule: a request is repeated only when repeating it cannot cost money twice.
GETs (polls, downloads) are retried on 429, 5xx and network errors; the create
POST only on 429, which Replicate answers before doing anything; a 5xx or a lost
connection on create is reported, never retried, as the prediction may exist.

The same rule marks what ``imagen worker`` may run again (``transient``): a 429
on create and any failure of an upload (nothing is created yet), and a poll
that keeps failing (the prediction run decides in the end: see
PredictionRun). A create that never reached Replicate is BackendUnavailable.

The token lives only in the session's headers: it is in no attribute a repr
shows, and server text is scrubbed of it before it reaches a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from imagen_core import BackendError, BackendUnavailable
from imagen_core.errors import transient_status
from imagen_core.remote import (
    json_body,
    maybe_sent,
    network_reason,
    one_line,
    send_retrying,
    user_agent,
)
from imagen_replicate.pacing import Pacing

if TYPE_CHECKING:
    import requests

    from imagen_core import ImageInput
    from imagen_replicate.config import ModelRef

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
DOWNLOAD_TIMEOUT_S = 60.0
UPLOAD_TIMEOUT_S = 120.0
# Replicate holds a sync-mode create for up to wait_s; the read timeout must be longer.
CREATE_MARGIN_S = 15.0
TOKEN_PAGE = "https://replicate.com/account/api-tokens"
# Hosts that may receive the token when downloading outputs: Replicate's file CDN
# (downloads may need it) besides the API host itself. A model whose output points
# anywhere else is fetched without it, so the token never leaves Replicate.
_TRUSTED_SUFFIXES = ("replicate.delivery", "replicate.com")
_RETRIED = frozenset({429, 500, 502, 503, 504})


class ReplicateClient:
    def __init__(
        self, base_url: str, token: str, *, token_env: str, pacing: Pacing, deadline: float
    ) -> None:
        import requests  # here, not at import: `imagen --help` imports every plugin

        self.base_url = base_url
        self.token_env = token_env
        self.pacing = pacing
        self.deadline = deadline
        self._scrub_value = token
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent("imagen-replicate")
        self._api_headers = {"Authorization": f"Bearer {token}"}

    def __repr__(self) -> str:
        return f"ReplicateClient(base_url={self.base_url!r}, token_env={self.token_env!r})"

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------ endpoints

    def create(
        self, model: ModelRef, model_input: dict[str, Any], *, wait_s: int, cancel_after: str
    ) -> dict[str, Any]:
        """POST the prediction in sync mode (``Prefer: wait=N``); 201 or 200."""
        if model.version:
            url = f"{self.base_url}/v1/predictions"
            body: dict[str, Any] = {"version": model.version, "input": model_input}
        else:
            owner, name = quote(model.owner, safe=""), quote(model.name, safe="")
            url = f"{self.base_url}/v1/models/{owner}/{name}/predictions"
            body = {"input": model_input}
        headers = {
            **self._api_headers,
            "Prefer": f"wait={wait_s}",
            # A server-side deadline as a backstop: should the answer to this POST be
            # lost (Ctrl-C while Replicate holds it), we never learn the id to cancel.
            "Cancel-After": cancel_after,
        }
        response = self._send(
            "POST",
            url,
            headers=headers,
            json=body,
            timeout=(CONNECT_TIMEOUT_S, wait_s + CREATE_MARGIN_S),
            retry_statuses=frozenset({429}),
            retry_network=False,
            doing=f"creating a prediction of {model}",
        )
        if response.status_code not in (200, 201):
            raise self._create_failure(response, model)
        return self._prediction(response)

    def get(self, prediction_id: str) -> dict[str, Any]:
        response = self._send(
            "GET",
            self._prediction_url(prediction_id),
            headers=self._api_headers,
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            retry_statuses=_RETRIED,
            retry_network=True,
            doing=f"polling prediction {prediction_id}",
        )
        if response.status_code != 200:
            # A 429 or 5xx may pass: the run keeps polling until its deadline.
            raise self._failure(response, f"polling prediction {prediction_id}", again=True)
        return self._prediction(response)

    def cancel(self, prediction_id: str) -> dict[str, Any]:
        # Cancelling twice is harmless, so it may be retried like a GET; it runs
        # after Ctrl-C, so its retries are few and short.
        response = self._send(
            "POST",
            self._prediction_url(prediction_id) + "/cancel",
            headers=self._api_headers,
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            retry_statuses=_RETRIED,
            retry_network=True,
            doing=f"cancelling prediction {prediction_id}",
            pacing=Pacing(
                sleep=self.pacing.sleep, clock=self.pacing.clock, retries=2, retry_max_s=5.0
            ),
            use_deadline=False,
        )
        if response.status_code != 200:
            raise self._failure(response, f"cancelling prediction {prediction_id}", again=False)
        return self._prediction(response)

    def upload(self, item: ImageInput, name: str) -> dict[str, Any]:
        """POST /v1/files (multipart, the file as ``content``): Replicate's file
        object, whose ``urls.get`` a prediction takes as an input. Retried like a
        GET: an upload costs nothing, and a second copy is harmless."""
        response = self._send(
            "POST",
            f"{self.base_url}/v1/files",
            headers=self._api_headers,
            files={
                "content": (name, item.data, item.mime_type),
                "filename": (None, name),
                "type": (None, item.mime_type),
            },
            timeout=(CONNECT_TIMEOUT_S, UPLOAD_TIMEOUT_S),
            retry_statuses=_RETRIED,
            retry_network=True,
            doing=f"uploading {name}",
        )
        if response.status_code not in (200, 201):
            if response.status_code == 413:
                raise self._too_large(response, name, len(item.data))
            # Before the create: nothing can be paid for yet.
            raise self._failure(response, f"uploading {name}", again=True)
        data = json_body(response)
        urls = data.get("urls") if isinstance(data, dict) else None
        if (
            not isinstance(data, dict)
            or not isinstance(urls, dict)
            or not isinstance(urls.get("get"), str)
        ):
            raise BackendError(
                f"Replicate answered the upload of {name} without a file URL: "
                f"{self._scrub(one_line(response.text, 200))}; check base_url"
            )
        return data

    def _too_large(self, response: requests.Response, name: str, size: int) -> BackendError:
        return BackendError(
            f"Replicate refused {name} ({size / 2**20:.1f} MB) as too large (HTTP 413: "
            f"{self._detail(response)}); files may be at most 100 MB: scale it down"
        )

    def download(self, url: str) -> tuple[bytes, str | None]:
        """The output file's bytes and its Content-Type, fetched at once: Replicate
        deletes outputs an hour after the prediction."""
        headers = self._api_headers if self._trusted(url) else {}
        response = self._send(
            "GET",
            url,
            headers=headers,
            timeout=(CONNECT_TIMEOUT_S, DOWNLOAD_TIMEOUT_S),
            retry_statuses=_RETRIED,
            retry_network=True,
            doing="downloading the output",
        )
        if response.status_code in (403, 404, 410):
            raise BackendError(
                f"Replicate's output file is gone (HTTP {response.status_code} for "
                f"{self._scrub(url)}): output files expire an hour after the prediction; "
                "run the generation again"
            )
        if response.status_code != 200:
            # The output is made and paid for: never run the job twice for it.
            raise self._failure(response, "downloading the output", again=False)
        if not response.content:
            raise BackendError(f"Replicate's output file {self._scrub(url)} is empty")
        return response.content, response.headers.get("Content-Type")

    # ------------------------------------------------------------ transport

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        timeout: tuple[float, float],
        retry_statuses: frozenset[int],
        retry_network: bool,
        doing: str,
        json: Any = None,
        files: dict[str, Any] | None = None,
        pacing: Pacing | None = None,
        use_deadline: bool = True,
    ) -> requests.Response:
        """One request, repeated on ``retry_statuses`` (and network errors when
        ``retry_network``) with backoff honouring Retry-After, within the pacing's
        retry budget and before the deadline."""
        return send_retrying(
            lambda: self._session.request(
                method, url, headers=headers, json=json, files=files, timeout=timeout
            ),
            retry_when=lambda response: response.status_code in retry_statuses,
            retry_network=retry_network,
            pacing=pacing or self.pacing,
            until=self.deadline if use_deadline else None,
            unreachable=lambda exc: self._network_error(url, doing, exc, method),
        )

    def _prediction_url(self, prediction_id: str) -> str:
        return f"{self.base_url}/v1/predictions/{quote(prediction_id, safe='')}"

    def _trusted(self, url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower()
        if host == (urlsplit(self.base_url).hostname or "").lower():
            return True
        return any(host == s or host.endswith("." + s) for s in _TRUSTED_SUFFIXES)

    def _prediction(self, response: requests.Response) -> dict[str, Any]:
        data = json_body(response)
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("id"), str)
            or not isinstance(data.get("status"), str)
        ):
            raise BackendError(
                f"Replicate answered HTTP {response.status_code} with something that is not a "
                f"prediction: {self._scrub(one_line(response.text, 200))}; check base_url"
            )
        return data

    # ------------------------------------------------------------ messages

    def _scrub(self, text: str) -> str:
        return text.replace(self._scrub_value, "***") if self._scrub_value else text

    def _detail(self, response: requests.Response) -> str:
        """Replicate's problem+json ``detail`` (else ``title``, else the body), one line."""
        body = json_body(response)
        text = ""
        if isinstance(body, dict):
            text = str(body.get("detail") or body.get("title") or "")
        if not text:
            text = response.text or response.reason or ""
        return self._scrub(one_line(text)) or "no detail given"

    def _network_error(self, url: str, doing: str, exc: Exception, method: str) -> BackendError:
        """A network failure; BackendUnavailable (the worker waits for Replicate to
        answer again) only when no prediction can exist: a create or an upload
        that never left. An upload's lost connection is transient (nothing is
        created yet), and so is a poll's (the run keeps polling, and decides);
        a create that may have left, a cancel and a download are final."""
        text = self._unreachable(url, doing, exc, method)
        before_create = doing.startswith(("creating", "uploading"))
        if before_create and not maybe_sent(exc):
            return BackendUnavailable(text)
        return BackendError(text, transient=doing.startswith(("uploading", "polling")))

    def _unreachable(self, url: str, doing: str, exc: Exception, method: str) -> str:
        parts = urlsplit(url)
        text = (
            f"Replicate at {parts.scheme}://{parts.netloc} is not reachable while {doing} "
            f"({network_reason(exc)})"
        )
        if method == "POST" and doing.startswith("creating") and maybe_sent(exc):
            text += (
                "; the request may have reached Replicate, so check "
                "https://replicate.com/predictions before trying again"
            )
        else:
            text += "; check the network, or base_url in the backend's block"
        return self._scrub(text)

    def _create_failure(self, response: requests.Response, model: ModelRef) -> BackendError:
        status, detail = response.status_code, self._detail(response)
        if status == 404:
            what = "version" if model.version else "model"
            return BackendError(
                f"Replicate has no {what} {model} (HTTP 404: {detail}); check `model` in the "
                "backend's block (owner/name, or owner/name:VERSION for other models)"
            )
        if status == 422:
            # Input validation: Replicate's detail names each bad field.
            return BackendError(f"Replicate refused the input for {model}: {detail} (HTTP 422)")
        if status >= 500:
            return BackendError(
                f"Replicate failed while creating a prediction of {model} (HTTP {status}: "
                f"{detail}); not retried, so that nothing is paid twice: check "
                "https://replicate.com/predictions before trying again"
            )
        # A 429 (Replicate refused it before doing anything) or another 4xx.
        return self._failure(response, f"creating a prediction of {model}", again=True)

    def _failure(self, response: requests.Response, doing: str, *, again: bool) -> BackendError:
        """One line for an answer that is not what was asked for. A 408, 429 or 5xx
        is transient when ``again``: no prediction can have been paid for because
        of this request (an upload, a create refused with 429, a poll)."""
        status, detail = response.status_code, self._detail(response)
        transient = again and transient_status(status)
        if status == 401:
            return BackendError(
                f"Replicate rejected the token in {self.token_env} (HTTP 401: {detail}); "
                f"set a valid API token from {TOKEN_PAGE}"
            )
        if status == 402:
            return BackendError(
                f"Replicate refused the prediction: {detail} (HTTP 402); add credit at "
                "https://replicate.com/account/billing"
            )
        if status == 403:
            return BackendError(
                f"Replicate refused access while {doing} (HTTP 403: {detail}); check that the "
                f"token in {self.token_env} belongs to an account that may do this"
            )
        if status == 429:
            return BackendError(
                f"Replicate is rate limiting us while {doing} (HTTP 429: {detail}), still after "
                f"{self.pacing.retries} retries; wait a minute and try again",
                transient=transient,
            )
        if status >= 500:
            return BackendError(
                f"Replicate is failing while {doing} (HTTP {status}: {detail}); see "
                "https://replicate.com/status and try again later",
                transient=transient,
            )
        return BackendError(
            f"Replicate answered HTTP {status} while {doing}: {detail}", transient=transient
        )
