"""The ComfyUI protocol: queue a prompt, follow it to the end, fetch its images.

What the real server does, and what this client does about it:

- A prompt's messages go only to the websocket whose ``clientId`` the prompt
  names, and nothing is buffered: the socket is opened *before* ``POST /prompt``.
- ``execution_success`` can arrive before ``/history/{id}`` has the entry
  (ComfyUI #11540): the history is fetched with brief retries.
- Sockets drop or go silent (ComfyUI #3128, #9393): when the socket cannot
  connect, drops, or stays quiet, the client asks ``/history`` and ``/queue``
  itself, so a finished prompt is never lost and a deleted one is noticed.
- An identical graph is answered from ComfyUI's cache: no node runs, no new file
  is written, and the history points at the files of the earlier run.
- ``/interrupt`` only stops the running prompt; a pending one must be deleted
  from the queue.

requests and websocket-client are imported when a client is made, never when
the plugin is registered.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from imagen_comfyui import errors
from imagen_comfyui.protocol import (
    Finished,
    Follower,
    ImageRef,
    display_url,
    mime_type,
    outcome,
    queue_ids,
)
from imagen_core.errors import BackendError

if TYPE_CHECKING:
    import requests
    import websocket

    from imagen_comfyui.workflows import ModelFile
    from imagen_core.models import ImageInput, Progress

# Uploads go into this sub-folder of ComfyUI's input/, named by their sha256:
# the same image is stored once, and the person's own input files stay apart.
UPLOAD_SUBFOLDER = "imagen"


class _TimedOut(Exception):
    pass


class ComfyUIClient:
    """One ComfyUI server. ``run`` queues a graph and waits for its end;
    ``fetch`` downloads an image; ``cancel`` stops a prompt wherever it is."""

    # Timing, as class attributes so that tests can shrink them.
    connect_timeout_s = 5.0  # TCP connect (HTTP and websocket)
    read_timeout_s = 60.0  # one HTTP answer
    history_retry_s = 5.0  # how long /history may lag the success message
    history_retry_interval_s = 0.005  # the first retry; doubled after each
    poll_interval_s = 0.25  # /history polling without a websocket
    watchdog_s = 5.0  # a silent socket: look at /history and /queue this often
    unreachable_s = 15.0  # connection errors while following: give up after this long
    cancel_timeout_s = 5.0
    view_attempts = 3  # /view answering 5xx or dropping: tries, 0.2 s then 0.4 s apart
    view_retry_s = 0.1
    upload_attempts = 3  # /upload/image answering 5xx or dropping (uploads are idempotent)

    def __init__(self, url: str) -> None:
        self._stats: Mapping[str, Any] | None = None
        import requests

        self.url = url.rstrip("/")
        self.shown = display_url(self.url)
        self.http: requests.Session = requests.Session()
        scheme, _, rest = self.url.partition("://")
        self.ws_url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"
        # sha256 -> what LoadImage takes, for the inputs this client has uploaded.
        self.uploaded: dict[str, str] = {}

    # ------------------------------------------------------------ inputs
    def upload(self, item: ImageInput) -> str:
        """Put one input image into ComfyUI's input folder and return the value
        LoadImage takes for it (``imagen/<sha256>.png``). Each image is sent once
        per client; ComfyUI itself keeps one file per content (same name and
        same bytes: no new file). Raises BackendError."""
        known = self.uploaded.get(item.sha256)
        if known is not None:
            return known
        import requests

        what = _label(item)
        name = f"{item.sha256}.{item.extension}"
        for attempt in range(1, self.upload_attempts + 1):
            try:
                answer = self.http.post(
                    f"{self.url}/upload/image",
                    files={"image": (name, item.data, item.mime_type)},
                    data={"type": "input", "subfolder": UPLOAD_SUBFOLDER},
                    timeout=(self.connect_timeout_s, self.read_timeout_s),
                )
            except requests.RequestException as exc:
                if isinstance(exc, requests.ConnectTimeout) or _never_sent(exc):
                    raise self.unreachable() from None
                if attempt == self.upload_attempts:
                    raise BackendError(
                        f"cannot upload {what} to ComfyUI at {self.shown}: {errors.one_line(exc)}"
                    ) from None
            else:
                if answer.status_code == 200:
                    value = self._uploaded_as(_json_or_none(answer), what)
                    self.uploaded[item.sha256] = value
                    return value
                if answer.status_code == 413:
                    raise BackendError(
                        f"{what} ({len(item.data) / 2**20:.1f} MB) is over the upload limit of "
                        f"ComfyUI at {self.shown}: start ComfyUI with a larger "
                        "--max-upload-size, or scale the image down"
                    )
                if answer.status_code < 500 or attempt == self.upload_attempts:
                    raise BackendError(
                        self._status_problem(
                            answer.status_code, answer.text, f"POST /upload/image ({what})"
                        )
                    )
            time.sleep(self.view_retry_s * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _uploaded_as(self, data: Any, what: str) -> str:
        """The LoadImage value of an upload answer ``{"name", "subfolder", "type"}``:
        ``subfolder/name``, or ``name`` when ComfyUI put it at the top."""
        name = data.get("name") if isinstance(data, Mapping) else None
        if not isinstance(name, str) or not name:
            raise BackendError(
                f"ComfyUI at {self.shown} answered the upload of {what} without a file name: "
                "is this a ComfyUI server?"
            )
        subfolder = data.get("subfolder")
        return f"{subfolder}/{name}" if isinstance(subfolder, str) and subfolder else name

    def forget(self, items: Iterable[ImageInput]) -> None:
        """Upload these again next time (ComfyUI has lost the files)."""
        for item in items:
            self.uploaded.pop(item.sha256, None)

    # ------------------------------------------------------------ running
    def run(
        self,
        graph: Mapping[str, Any],
        progress: Progress,
        *,
        timeout_s: float,
        label: str,
        files: Iterable[ModelFile] = (),
    ) -> Finished:
        """Queue ``graph`` and wait until it has ended. Cancels the prompt on a
        timeout, on Ctrl-C and on any failure of ours; raises BackendError."""
        deadline = time.monotonic() + timeout_s
        client_id = uuid.uuid4().hex
        socket = self._connect(client_id)
        # Our own prompt_id (ComfyUI accepts one since 2025-07; older servers
        # ignore it): a POST that times out can still be cancelled.
        proposed = str(uuid.uuid4())
        try:
            try:
                prompt_id = self._queue(graph, client_id, proposed, label, tuple(files))
            except BaseException as exc:
                if not isinstance(exc, BackendError) or isinstance(exc, _MaybeQueued):
                    self.cancel(proposed)
                raise
            try:
                return self._follow(prompt_id, graph, socket, progress, deadline)
            except errors.PromptFailed:
                raise  # ended on the server: nothing to cancel
            except _TimedOut:
                what = self.cancel(prompt_id)
                raise BackendError(
                    f"ComfyUI at {self.shown} did not finish {label} within {timeout_s:g} s "
                    f"(timeout_s){'; ' + what if what else ''}"
                ) from None
            except BaseException:
                self.cancel(prompt_id)
                raise
        finally:
            if socket is not None:
                socket.close()

    def _connect(self, client_id: str) -> websocket.WebSocket | None:
        """The websocket for ``client_id``, or None (then /history is polled)."""
        import websocket

        try:
            return websocket.create_connection(
                f"{self.ws_url}?clientId={client_id}",
                timeout=self.connect_timeout_s,
                skip_utf8_validation=True,
            )
        except (websocket.WebSocketException, OSError):
            # No socket (a proxy without websockets, a refused upgrade): the
            # prompt can still be followed through /history. A server that is
            # down entirely is reported by the POST that follows.
            return None

    def _queue(
        self,
        graph: Mapping[str, Any],
        client_id: str,
        proposed: str,
        label: str,
        files: tuple[ModelFile, ...],
    ) -> str:
        import requests

        body = {"prompt": graph, "client_id": client_id, "prompt_id": proposed}
        try:
            answer = self.http.post(
                f"{self.url}/prompt",
                json=body,
                timeout=(self.connect_timeout_s, self.read_timeout_s),
            )
        except requests.ConnectionError as exc:
            if isinstance(exc, requests.ConnectTimeout) or _never_sent(exc):
                raise self.unreachable() from None
            raise _MaybeQueued(
                f"ComfyUI at {self.shown} dropped the connection while queueing {label}"
            ) from None
        except requests.Timeout:
            raise _MaybeQueued(
                f"ComfyUI at {self.shown} did not answer POST /prompt within "
                f"{self.read_timeout_s:g} s"
            ) from None
        if answer.status_code == 400:
            body = _json_or_none(answer)
            if self._upload_gone(body, graph):
                raise UploadGone(
                    f"ComfyUI at {self.shown} no longer has an input image uploaded earlier"
                )
            reason = errors.rejected(body, files)
            raise BackendError(f"ComfyUI at {self.shown} rejected {label}: {reason}")
        if answer.status_code != 200:
            raise BackendError(
                self._status_problem(answer.status_code, answer.text, "POST /prompt")
            )
        data = _json_or_none(answer)
        if not isinstance(data, Mapping) or not isinstance(data.get("prompt_id"), str):
            raise BackendError(
                f"ComfyUI at {self.shown} answered POST /prompt without a prompt_id: "
                "is this a ComfyUI server?"
            )
        prompt_id: str = data["prompt_id"]
        node_errors = data.get("node_errors")
        if isinstance(node_errors, Mapping) and node_errors:
            # A 200 that still carries node_errors: ComfyUI queued the branches
            # that validated and silently dropped the others. Not what was asked.
            what = self.cancel(prompt_id)
            reason = "; ".join(errors.node_problems(node_errors, files)) or "invalid nodes"
            raise BackendError(
                f"ComfyUI at {self.shown} accepted only part of {label}: {reason}"
                f"{'; ' + what if what else ''}"
            )
        return prompt_id

    def _follow(
        self,
        prompt_id: str,
        graph: Mapping[str, Any],
        socket: websocket.WebSocket | None,
        progress: Progress,
        deadline: float,
    ) -> Finished:
        follower = Follower(prompt_id, graph, progress)
        ended = socket is not None and self._listen(socket, follower, deadline)
        if not ended:
            progress(follower.done, follower.total, "waiting (no websocket: polling /history)")
        entry = self._poll(prompt_id, deadline, lagging=ended)
        return outcome(prompt_id, entry, follower.cached)

    def _listen(self, socket: websocket.WebSocket, follower: Follower, deadline: float) -> bool:
        """Follow the socket until the prompt ends (True) or the socket is lost (False)."""
        import websocket

        check_at = time.monotonic() + self.watchdog_s
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise _TimedOut
            if now >= check_at:
                # Quiet for a while: a message may have been lost on the way.
                if self._finished_anyway(follower.prompt_id):
                    return True
                check_at = now + self.watchdog_s
            socket.settimeout(max(0.001, min(deadline, check_at) - now))
            try:
                frame = socket.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError):
                return False  # dropped: /history from here on
            if isinstance(frame, bytes):
                continue  # a preview image (or text) frame: nothing we need
            if not frame:
                return False  # the server closed the socket
            try:
                message = json.loads(frame)
            except ValueError:
                continue
            if follower.handle(message):
                return True

    def _finished_anyway(self, prompt_id: str) -> bool:
        """Whether /history already has the prompt; raises when it is lost."""
        import requests

        try:
            return self._history(prompt_id) is not None or self._lost(prompt_id)
        except requests.RequestException:
            return False  # the socket is still there: keep listening

    def _poll(self, prompt_id: str, deadline: float, *, lagging: bool) -> Mapping[str, Any]:
        """The prompt's history entry, polled until it appears. ``lagging``: the
        socket said it ended, so the entry is due at once (retry quickly)."""
        import requests

        fast_until = time.monotonic() + self.history_retry_s if lagging else 0.0
        check_at = time.monotonic() + self.watchdog_s
        failing_since: float | None = None
        quick = self.history_retry_interval_s
        while True:
            try:
                entry = self._history(prompt_id)
                if entry is not None:
                    return entry
                failing_since = None
                now = time.monotonic()
                if now >= check_at and now >= fast_until:
                    if self._lost(prompt_id):
                        continue  # finished between the two requests: read it
                    check_at = now + self.watchdog_s
            except requests.RequestException:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since >= self.unreachable_s:
                    raise BackendError(
                        f"ComfyUI at {self.shown} stopped answering while running prompt "
                        f"{prompt_id} (did it crash or restart?)"
                    ) from None
            now = time.monotonic()
            if now >= deadline:
                raise _TimedOut
            if now < fast_until:
                # Lagging history is there within milliseconds: start fast, back off.
                pause, quick = quick, min(quick * 2, self.poll_interval_s)
            else:
                pause = self.poll_interval_s
            time.sleep(max(0.0, min(pause, deadline - now)))

    def _lost(self, prompt_id: str) -> bool:
        """False while the prompt is queued or running. When it is in neither,
        True if /history has it after all, else PromptFailed: it is gone."""
        queue = self._get_json("/queue")
        if prompt_id in queue_ids(queue, "queue_running") | queue_ids(queue, "queue_pending"):
            return False
        if self._history(prompt_id) is not None:
            return True
        raise errors.PromptFailed(
            f"prompt {prompt_id} is neither queued nor in the history of ComfyUI at "
            f"{self.shown}: it was deleted from the queue, or ComfyUI restarted"
        )

    def system_stats(self) -> Mapping[str, Any]:
        """``/system_stats`` (the server's versions and devices), asked once;
        empty when the server does not answer it (it is only for the record)."""
        if self._stats is None:
            try:
                found = self._get_json("/system_stats")
            except Exception:  # an old server or a blip: the fingerprint is just shorter
                found = {}
            self._stats = found if isinstance(found, Mapping) else {}
        return self._stats

    def _history(self, prompt_id: str) -> Mapping[str, Any] | None:
        """The history entry, or None while ComfyUI has none (queued, running, lagging)."""
        data = self._get_json(f"/history/{prompt_id}")
        entry = data.get(prompt_id) if isinstance(data, Mapping) else None
        return entry if isinstance(entry, Mapping) else None

    def _get_json(self, path: str) -> Any:
        """GET ``path`` as JSON; requests' errors pass through (callers retry)."""
        import requests

        answer = self.http.get(
            f"{self.url}{path}", timeout=(self.connect_timeout_s, self.read_timeout_s)
        )
        if answer.status_code >= 500:
            raise requests.HTTPError(f"HTTP {answer.status_code}", response=answer)
        if answer.status_code != 200:
            raise BackendError(self._status_problem(answer.status_code, answer.text, f"GET {path}"))
        data = _json_or_none(answer)
        if data is None:
            raise BackendError(
                f"ComfyUI at {self.shown} answered GET {path} with something that is not JSON"
            )
        return data

    # ------------------------------------------------------------ images
    def fetch(self, ref: ImageRef, *, cached: bool = False) -> tuple[bytes, str]:
        """The bytes and MIME type of one image, through ``/view``."""
        import requests
        from urllib3.exceptions import HTTPError as TransferError

        for attempt in range(1, self.view_attempts + 1):
            try:
                status, content_type, data = self._download(ref)
            except (requests.RequestException, TransferError, OSError) as exc:
                if attempt == self.view_attempts:
                    raise BackendError(
                        f"cannot download {ref.filename} from ComfyUI at {self.shown}: "
                        f"{errors.one_line(exc)}"
                    ) from None
            else:
                if status == 200 and data:
                    return data, mime_type(ref.filename, content_type)
                if status == 404:
                    why = (
                        " (ComfyUI answered from its cache with the file of an earlier run, "
                        "which has been deleted since; run again with another seed)"
                        if cached
                        else ""
                    )
                    raise BackendError(
                        f"ComfyUI at {self.shown} lists {ref.filename} in its "
                        f"{ref.type} folder but /view cannot find it{why}"
                    )
                if status < 500 or attempt == self.view_attempts:
                    text = data.decode("utf-8", "replace")
                    raise BackendError(
                        self._status_problem(status, text, f"GET /view ({ref.filename})")
                    )
            time.sleep(self.view_retry_s * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _download(self, ref: ImageRef) -> tuple[int, str | None, bytes]:
        # One read of the raw body: ~1 ms less per 1.5 MB image than .content,
        # which joins it from 10 kB chunks.
        with self.http.get(
            f"{self.url}/view",
            params=ref.query(),
            timeout=(self.connect_timeout_s, self.read_timeout_s),
            stream=True,
        ) as answer:
            data = answer.raw.read(decode_content=True)
            return answer.status_code, answer.headers.get("Content-Type"), data

    # ------------------------------------------------------------ cancelling
    def cancel(self, prompt_id: str) -> str:
        """Stop ``prompt_id`` wherever it is; return what was done ("" for nothing).

        Best effort and quick: it runs on timeouts and on Ctrl-C, possibly with
        the server gone. A pending prompt is deleted from the queue (``/interrupt``
        would not touch it); the running one is interrupted by its id, and only
        when it is ours: older servers ignore the id and interrupt whatever runs."""
        import requests

        timeout = (min(self.connect_timeout_s, self.cancel_timeout_s), self.cancel_timeout_s)
        done = ""
        try:
            queue = self.http.get(f"{self.url}/queue", timeout=timeout).json()
            if prompt_id in queue_ids(queue, "queue_pending"):
                self.http.post(f"{self.url}/queue", json={"delete": [prompt_id]}, timeout=timeout)
                done = "removed it from ComfyUI's queue"
                # It may have started between the two requests.
                queue = self.http.get(f"{self.url}/queue", timeout=timeout).json()
            if prompt_id in queue_ids(queue, "queue_running"):
                self.http.post(
                    f"{self.url}/interrupt", json={"prompt_id": prompt_id}, timeout=timeout
                )
                done = "interrupted it"
        except (requests.RequestException, ValueError):
            pass
        return done

    # ------------------------------------------------------------ messages
    def unreachable(self) -> BackendError:
        return BackendError(f"ComfyUI at {self.shown} is not reachable (is it running?)")

    def _status_problem(self, status: int, body: str, what: str) -> str:
        text = errors.one_line(body, 120) if body else "no body"
        hint = " (is this a ComfyUI server?)" if status == 404 else ""
        return f"ComfyUI at {self.shown} answered HTTP {status} to {what}: {text}{hint}"

    def _upload_gone(self, body: Any, graph: Mapping[str, Any]) -> bool:
        """Whether a 400 says a file this client uploaded is missing (someone
        cleaned ComfyUI's input folder): LoadImage's "Invalid image file"."""
        node_errors = body.get("node_errors") if isinstance(body, Mapping) else None
        if not isinstance(node_errors, Mapping) or not self.uploaded:
            return False
        ours = set(self.uploaded.values())
        for node_id, entry in node_errors.items():
            node = graph.get(node_id)
            inputs = node.get("inputs") if isinstance(node, Mapping) else None
            if not isinstance(entry, Mapping) or not isinstance(inputs, Mapping):
                continue
            for error in entry.get("errors") or []:
                if not isinstance(error, Mapping):
                    continue
                extra = error.get("extra_info")
                if (
                    error.get("type") == "custom_validation_failed"
                    and isinstance(extra, Mapping)
                    and inputs.get(extra.get("input_name")) in ours
                ):
                    return True
        return False


class UploadGone(BackendError):
    """ComfyUI refused a prompt because an input uploaded earlier is gone:
    upload it again and resubmit."""


def _label(item: ImageInput) -> str:
    if item.source:
        return f"input image {item.source}"
    return f"the {item.role} input (sha256 {item.sha256[:12]})"


class _MaybeQueued(BackendError):
    """POST /prompt failed after the request went out: the prompt may be queued."""


def _never_sent(exc: BaseException) -> bool:
    """Whether a requests ConnectionError happened before the request went out:
    nothing listens there, the name does not resolve, or the connect timed out."""
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _json_or_none(answer: requests.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None
