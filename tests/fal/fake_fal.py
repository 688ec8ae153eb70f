"""A fake fal.ai queue API on 127.0.0.1, speaking the wire protocol imagen-fal uses.

It follows the real service as described in shared/reference/fal-queue-api.md and
fal's queue docs (docs.fal.ai/model-endpoints/queue), including its traps:

* auth is ``Authorization: Key <FAL_KEY>``; anything else is 401 ``{"detail": ...}``;
* submit is ``POST /{endpoint id}`` with the model input as the whole body, and the
  answer's status/response/cancel URLs drop the endpoint's subpath
  (``fal-ai/flux/dev`` -> ``/fal-ai/flux/requests/{id}``): a client that rebuilds
  them from the endpoint id gets 404;
* ``X-Fal-Request-Timeout`` must be a number of seconds above 1;
* the queue accepts any JSON object: the input is validated when the request
  runs, so a bad input is a COMPLETED request whose result URL answers 422 with
  ``{"detail": [{"loc": ["body", field], "msg", "type"}]}``;
* status walks IN_QUEUE (``queue_position`` counting down) -> IN_PROGRESS (``logs``,
  null unless ``?logs=1``) -> COMPLETED (``logs``, ``metrics.inference_time``), and
  always carries the keys fal's client indexes without defaults;
* cancel is ``PUT .../cancel``: 202 ``{"status": "CANCELLATION_REQUESTED"}`` while
  queued or running, 400 ``{"status": "ALREADY_COMPLETED"}`` once done, 404
  ``{"status": "NOT_FOUND"}`` for an unknown id;
* a run that fails on fal's side is COMPLETED with ``error``/``error_type`` in its
  status, and its result URL answers fal's request-error body ``{"detail",
  "error_type"}`` with the ``X-Fal-Error-Type`` header and the status fal's docs
  give the type (runner_server_error 500, runner_scheduling_failure 503,
  request_timeout 504, ...);
* status answers 202 until COMPLETED, then 200 (only "a 2xx" is confirmed: fal's
  client accepts any);
* the result fetched before COMPLETED is 400 (fal's exact answer there is
  unconfirmed: clients must poll the status first, as fal's client does);
* output files are served by the fake itself, without auth, as fal's CDN does;
* large inputs go through fal's storage as fal's client sends them: ``POST
  /storage/auth/token?storage_type=fal-cdn-v3`` with the key gives a CDN token
  and upload root, ``POST /files/upload`` with ``Authorization: Bearer <token>``,
  the file's Content-Type and its bytes answers ``{"access_url": ...}``.

Every request is recorded (method, path, query, headers, body) so that tests
assert exactly what the adapter sent. Failures are scripted per route with ``fail()``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from tests.fake_http import FakeHTTPServer, Recorded, Reply

__all__ = ["FakeFal", "Recorded", "Reply"]

KEY = "0f9e8d7c-6b5a-4321-9fed-cba987654321:fakefalsecret0123456789abcdef"
PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
# fal's request error types and the status each comes with (fal's docs, "Request
# Error Types").
ERROR_STATUS = {
    "request_timeout": 504,
    "startup_timeout": 504,
    "runner_scheduling_failure": 503,
    "runner_connection_timeout": 503,
    "runner_disconnected": 503,
    "runner_connection_refused": 503,
    "runner_connection_error": 503,
    "runner_incomplete_response": 502,
    "runner_server_error": 500,
    "internal_error": 500,
}
KONTEXT_RATIOS = ["21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"]
BANANA_RATIOS = ["21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"]


@dataclass
class Endpoint:
    """An endpoint's input schema (as far as the fake validates it) and output shape."""

    schema: dict[str, dict[str, Any]]
    output: str  # "flux" (images with sizes, seed, nsfw flags) | "banana" | "seedream"
    default_size: str | None = "landscape_4_3"
    required: tuple[str, ...] = ("prompt",)


def _flux(steps_max: int, **extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "prompt": {"type": "string"},
        "image_size": {"type": "image_size"},
        "num_inference_steps": {"type": "integer", "min": 1, "max": steps_max},
        "seed": {"type": "integer"},
        "num_images": {"type": "integer", "min": 1, "max": 4},
        "output_format": {"type": "string", "enum": ["jpeg", "png"]},
        "enable_safety_checker": {"type": "boolean"},
        "sync_mode": {"type": "boolean"},
        **extra,
    }


_GUIDANCE = {"type": "number", "min": 1, "max": 20}
_IMAGE_URL = {"type": "image_url"}
_IMAGE_URLS = {"type": "image_urls", "max": 10}

ENDPOINTS = {
    "fal-ai/flux/schnell": Endpoint(_flux(12), "flux"),
    "fal-ai/flux/dev": Endpoint(_flux(50, guidance_scale=_GUIDANCE), "flux"),
    "fal-ai/flux/dev/image-to-image": Endpoint(
        {
            "prompt": {"type": "string"},
            "image_url": _IMAGE_URL,
            "strength": {"type": "number", "min": 0.01, "max": 1},
            "num_inference_steps": {"type": "integer", "min": 1, "max": 50},
            "guidance_scale": _GUIDANCE,
            "seed": {"type": "integer"},
        },
        "flux",
        default_size=None,
        required=("prompt", "image_url"),
    ),
    "fal-ai/flux-pro/kontext": Endpoint(
        {
            "prompt": {"type": "string"},
            "image_url": _IMAGE_URL,
            "aspect_ratio": {"type": "string", "enum": KONTEXT_RATIOS},
            "guidance_scale": _GUIDANCE,
            "seed": {"type": "integer"},
            "output_format": {"type": "string", "enum": ["jpeg", "png"]},
        },
        "flux",
        default_size=None,
        required=("prompt", "image_url"),
    ),
    "fal-ai/flux-pro/kontext/text-to-image": Endpoint(
        {
            "prompt": {"type": "string"},
            "aspect_ratio": {"type": "string", "enum": KONTEXT_RATIOS},
            "guidance_scale": _GUIDANCE,
            "seed": {"type": "integer"},
        },
        "flux",
        default_size="square_hd",
    ),
    "fal-ai/nano-banana": Endpoint(
        {
            "prompt": {"type": "string"},
            "aspect_ratio": {"type": "string", "enum": BANANA_RATIOS},
            "num_images": {"type": "integer", "min": 1, "max": 4},
            "output_format": {"type": "string", "enum": ["jpeg", "png", "webp"]},
            "seed": {"type": "integer"},
        },
        "banana",
        default_size=None,
    ),
    "fal-ai/nano-banana/edit": Endpoint(
        {
            "prompt": {"type": "string"},
            "image_urls": _IMAGE_URLS,
            "aspect_ratio": {"type": "string", "enum": ["auto", *BANANA_RATIOS]},
            "seed": {"type": "integer"},
        },
        "banana",
        default_size=None,
        required=("prompt", "image_urls"),
    ),
    "fal-ai/bytedance/seedream/v4/text-to-image": Endpoint(
        {
            "prompt": {"type": "string"},
            "image_size": {"type": "image_size"},
            "seed": {"type": "integer"},
        },
        "seedream",
        default_size="square_hd",
    ),
    "fal-ai/bytedance/seedream/v4/edit": Endpoint(
        {
            "prompt": {"type": "string"},
            "image_size": {"type": "image_size"},
            "image_urls": _IMAGE_URLS,
            "seed": {"type": "integer"},
        },
        "seedream",
        default_size="square_hd",
        required=("prompt", "image_urls"),
    ),
    "fal-ai/fast-sdxl": Endpoint(
        {
            "prompt": {"type": "string"},
            "negative_prompt": {"type": "string"},
            "image_size": {"type": "image_size"},
            "num_inference_steps": {"type": "integer", "min": 1, "max": 65},
            "guidance_scale": _GUIDANCE,
            "seed": {"type": "integer"},
        },
        "flux",
        default_size="square_hd",
    ),
    # Outside every family: takes a prompt and a seed, and one input of its own.
    "someone/pixel-art": Endpoint(
        {"prompt": {"type": "string"}, "seed": {"type": "integer"}, "palette": {"type": "string"}},
        "seedream",
        default_size="square",
    ),
}


@dataclass
class Queued:
    """One request on the fake queue."""

    id: str
    app: str  # owner/alias: the prefix of its queue URLs
    endpoint: str
    spec: Endpoint
    input: dict[str, Any]
    polls: int = 0  # status GETs served so far
    state: str = "IN_QUEUE"
    canceled: bool = False
    logs: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "ok"  # ok | invalid | error
    problems: list[dict[str, Any]] = field(default_factory=list)


class FakeFal(FakeHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.key = KEY
        self.requests: list[Recorded] = []
        self.queued: dict[str, Queued] = {}
        self.uploads: dict[str, tuple[bytes, str]] = {}  # name -> (bytes, content type)
        self.cdn_token = "cdn-token-" + uuid.uuid4().hex
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        # What the next requests do (tests change these):
        self.queue_polls = 1  # status polls answered IN_QUEUE
        self.queue_position = 2  # the position at submit, counting down per poll
        self.progress_polls = 2  # then polls answered IN_PROGRESS
        self.never_finish = False  # stays IN_PROGRESS for good
        self.runner_error: str | None = None  # COMPLETED with a runner error: its detail
        self.runner_error_type = "runner_server_error"  # its error_type (and so its status)
        self.runner_error_runs: int | None = None  # how many runs fail so; None: all
        self.status_reports_error = True  # a failed COMPLETED status carries error/error_type
        self.inference_time = 1.25
        self.omit_sizes = False  # output images without width/height
        self.nsfw = False
        self.files_gone = False  # every output file 404
        self.file_content_type: str | None = None  # None: the image's own type
        self.echo_key_in_errors = False  # a hostile server repeating the header back

    # ------------------------------------------------------------ test API

    def fail(self, route: str, *replies: Reply) -> None:
        """Answer the next requests of ``route`` (submit, status, result, cancel, file)."""
        self._scripts.setdefault(route, []).extend(replies)

    def routed(self, route: str) -> list[Recorded]:
        return [r for r in self.requests if _route(r.method, r.path)[0] == route]

    @property
    def submits(self) -> list[Recorded]:
        return self.routed("submit")

    @property
    def polls(self) -> list[Recorded]:
        return self.routed("status")

    @property
    def results(self) -> list[Recorded]:
        return self.routed("result")

    @property
    def cancels(self) -> list[Recorded]:
        return self.routed("cancel")

    @property
    def downloads(self) -> list[Recorded]:
        return self.routed("file")

    def only(self) -> Queued:
        (queued,) = self.queued.values()
        return queued

    # ------------------------------------------------------------ routes

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        with self._lock:
            self.requests.append(Recorded(method, parts.path, headers, body, parse_qs(parts.query)))
            route, args = _route(method, parts.path)
            if route is None:
                return Reply(
                    405 if method not in ("GET", "POST", "PUT") else 404, {"detail": "Not Found"}
                )
            if (
                route not in ("file", "upload")
                and headers.get("authorization") != f"Key {self.key}"
            ):
                detail = "Unauthorized"
                if self.echo_key_in_errors:
                    detail += f" (got {headers.get('authorization', '')!r})"
                return Reply(401, {"detail": detail})
            script = self._scripts.get(route)
            if script:
                reply = script.pop(0)
                if self.echo_key_in_errors and isinstance(reply.body, dict):
                    reply.body["detail"] = f"{reply.body.get('detail')} {headers['authorization']}"
                return reply
            query = parse_qs(parts.query)
            return getattr(self, f"_{route}")(headers, body, query, *args)

    def _submit(self, headers: dict[str, str], body: bytes, _query: Any, endpoint: str) -> Reply:
        spec = ENDPOINTS.get(endpoint)
        if spec is None:
            return Reply(404, {"detail": f"Application '{endpoint}' not found"})
        deadline = headers.get("x-fal-request-timeout")
        if deadline is not None:
            try:
                ok = float(deadline) > 1
            except ValueError:
                ok = False
            if not ok:
                return Reply(
                    400,
                    {"detail": "X-Fal-Request-Timeout must be a number of seconds above 1"},
                    {"X-Fal-Error-Type": "bad_request"},
                )
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return Reply(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": "Input should be a valid dictionary",
                            "type": "dict_type",
                        }
                    ]
                },
            )
        rid = str(uuid.uuid4())
        app = _app(endpoint)
        queued = Queued(rid, app, endpoint, spec, payload)
        self.queued[rid] = queued
        base = f"{self.url}/{app}/requests/{rid}"
        return Reply(
            200,
            {
                "status": "IN_QUEUE",
                "request_id": rid,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "logs": None,
                "metrics": {},
                "queue_position": self.queue_position,
            },
            {"x-fal-request-id": rid},
        )

    def _status(
        self, _headers: Any, _body: bytes, query: dict[str, list[str]], app: str, rid: str
    ) -> Reply:
        queued = self.queued.get(rid)
        if queued is None or queued.app != app:
            return Reply(404, {"detail": "Request not found"})
        queued.polls += 1
        if not queued.canceled and queued.state != "COMPLETED":
            self._advance(queued)
        logs = queued.logs if query.get("logs", ["0"])[0] in ("1", "true") else None
        base = f"{self.url}/{app}/requests/{rid}"
        data: dict[str, Any] = {
            "status": queued.state,
            "request_id": rid,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }
        if queued.state == "IN_QUEUE":
            data["queue_position"] = max(0, self.queue_position - queued.polls)
        else:
            data["logs"] = logs
            data["metrics"] = (
                {"inference_time": self.inference_time} if queued.state == "COMPLETED" else {}
            )
            if queued.state == "COMPLETED" and queued.outcome != "ok" and self.status_reports_error:
                code = 422 if queued.outcome == "invalid" else ERROR_STATUS[self.runner_error_type]
                data["error"] = f"Invalid status code: {code}"
                data["error_type"] = "validation_error" if code == 422 else self.runner_error_type
        return Reply(200 if queued.state == "COMPLETED" else 202, data)

    def _advance(self, queued: Queued) -> None:
        """One poll's worth of progress through IN_QUEUE -> IN_PROGRESS -> COMPLETED."""
        if queued.polls <= self.queue_polls:
            return
        queued.state = "IN_PROGRESS"
        done = queued.polls - self.queue_polls
        total = self.progress_polls
        if self.never_finish or done <= total:
            step = min(done, total)
            queued.logs.append(
                _log(
                    f"{100 * step // max(total, 1):3d}%|{'#' * step:<4}| {step}/{total} [00:01<00:01, 2.0it/s]"
                )
            )
            return
        queued.state = "COMPLETED"
        queued.problems = _validate(queued.spec, queued.input)
        if queued.problems:
            queued.outcome = "invalid"
        elif self.runner_error and (self.runner_error_runs is None or self.runner_error_runs > 0):
            queued.outcome = "error"
            if self.runner_error_runs is not None:
                self.runner_error_runs -= 1
        queued.logs.append(_log("Generation finished."))

    def _result(self, _headers: Any, _body: bytes, _query: Any, app: str, rid: str) -> Reply:
        queued = self.queued.get(rid)
        if queued is None or queued.app != app:
            return Reply(404, {"detail": "Request not found"})
        if queued.state != "COMPLETED":
            return Reply(400, {"detail": "Request is still in progress"})
        if queued.outcome == "invalid":
            return Reply(422, {"detail": queued.problems}, {"X-Fal-Retryable": "false"})
        if queued.outcome == "error":
            kind = self.runner_error_type
            return Reply(
                ERROR_STATUS[kind],
                {"detail": self.runner_error, "error_type": kind},
                {"X-Fal-Error-Type": kind},
            )
        return Reply(200, self._output(queued))

    def _cancel(self, _headers: Any, _body: bytes, _query: Any, app: str, rid: str) -> Reply:
        queued = self.queued.get(rid)
        if queued is None or queued.app != app:
            return Reply(404, {"status": "NOT_FOUND"})
        if queued.state == "COMPLETED":
            return Reply(400, {"status": "ALREADY_COMPLETED"})
        queued.canceled = True
        return Reply(202, {"status": "CANCELLATION_REQUESTED"})

    def _token(self, _headers: Any, _body: bytes, query: dict[str, list[str]]) -> Reply:
        # fal's storage API: a short-lived CDN token and where to upload with it.
        if query.get("storage_type") != ["fal-cdn-v3"]:
            return Reply(400, {"detail": "unknown storage_type"})
        return Reply(
            200,
            {
                "token": self.cdn_token,
                "token_type": "Bearer",
                "base_url": self.url,
                "expires_at": "2099-01-01T00:00:00+00:00",
            },
        )

    def _upload(self, headers: dict[str, str], body: bytes, _query: Any) -> Reply:
        # The CDN takes the token, never the key, and the file's bytes as the body.
        if headers.get("authorization") != f"Bearer {self.cdn_token}":
            return Reply(401, {"detail": "Invalid token"})
        kind = headers.get("content-type", "")
        if not kind.startswith("image/") or not body:
            return Reply(400, {"detail": "an upload needs a body and its Content-Type"})
        name = f"{uuid.uuid4().hex}-{headers.get('x-fal-file-name', 'file')}"
        self.uploads[name] = (body, kind)
        return Reply(200, {"access_url": f"{self.url}/files/uploads/{name}"})

    def _file(self, _headers: Any, _body: bytes, _query: Any, rid: str, name: str) -> Reply:
        if rid == "uploads" and name in self.uploads:
            data, kind = self.uploads[name]
            return Reply(200, data, {"Content-Type": kind})
        queued = self.queued.get(rid)
        if self.files_gone or queued is None:
            return Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        data, kind = self.image(queued, name)
        return Reply(200, data, {"Content-Type": self.file_content_type or kind})

    # ------------------------------------------------------------ outputs

    def output_size(self, queued: Queued) -> tuple[int, int]:
        size = queued.input.get("image_size", queued.spec.default_size)
        if isinstance(size, dict):
            return int(size["width"]), int(size["height"])
        if isinstance(size, str) and size in PRESETS:
            return PRESETS[size]
        return 1024, 1024

    def _output(self, queued: Queued) -> dict[str, Any]:
        count = int(queued.input.get("num_images", 1))
        fmt = str(
            queued.input.get("output_format", "png" if queued.spec.output != "flux" else "jpeg")
        )
        width, height = self.output_size(queued)
        images = []
        for index in range(count):
            name = f"out-{index}.{'jpg' if fmt == 'jpeg' else fmt}"
            data, kind = self.image(queued, name)
            item: dict[str, Any] = {
                "url": f"{self.url}/files/{queued.id}/{name}",
                "content_type": kind,
            }
            if queued.input.get("sync_mode"):
                item["url"] = f"data:{kind};base64,{base64.b64encode(data).decode()}"
            if queued.spec.output == "banana":
                item.update(file_name=name, file_size=len(data))
            elif not self.omit_sizes:
                item.update(width=width, height=height)
            images.append(item)
        output: dict[str, Any] = {"images": images}
        if queued.spec.output == "flux":
            output.update(
                seed=queued.input.get("seed", 123456789),
                has_nsfw_concepts=[self.nsfw] * count,
                prompt=queued.input.get("prompt"),
                timings={"inference": self.inference_time},
            )
        elif queued.spec.output == "seedream":
            output["seed"] = queued.input.get("seed", 987654321)
        else:
            output["description"] = ""
        return output

    def image(self, queued: Queued, name: str) -> tuple[bytes, str]:
        """The bytes served for an output file: a tiny real image in its format."""
        fmt = name.rpartition(".")[2]
        pil, kind = {
            "png": ("PNG", "image/png"),
            "jpg": ("JPEG", "image/jpeg"),
            "webp": ("WEBP", "image/webp"),
        }[fmt]
        seed = int(queued.input.get("seed", 0)) % 256
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), (seed, 64, 128)).save(buffer, pil)
        return buffer.getvalue(), kind


def _app(endpoint: str) -> str:
    """owner/alias of an endpoint id: the part its queue URLs keep."""
    parts = endpoint.split("/")
    return "/".join(parts[: 3 if parts[0] in ("workflows", "comfy") else 2])


def _route(method: str, path: str) -> tuple[str | None, tuple[str, ...]]:
    """(handler name, its arguments) for a request."""
    if method == "POST" and path == "/storage/auth/token":
        return "token", ()
    if method == "POST" and path == "/files/upload":
        return "upload", ()
    if method == "GET" and (m := re.fullmatch(r"/files/([^/]+)/([^/]+)", path)):
        return "file", (m[1], m[2])
    if m := re.fullmatch(r"/(.+)/requests/([^/]+)(/status|/cancel)?", path):
        kind = {"/status": "status", "/cancel": "cancel", None: "result"}[m[3]]
        wanted = {"status": "GET", "cancel": "PUT", "result": "GET"}[kind]
        return (kind, (m[1], m[2])) if method == wanted else (None, ())
    if method == "POST" and (m := re.fullmatch(r"/([^/].*[^/])", path)):
        return "submit", (m[1],)
    return None, ()


def _log(message: str) -> dict[str, Any]:
    return {
        "message": message,
        "level": "INFO",
        "source": "stdout",
        "timestamp": "2026-11-28T01:00:00.000000",
    }


def _problem(field_name: str, msg: str, kind: str, value: Any = None, **ctx: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"loc": ["body", field_name], "msg": msg, "type": kind}
    if value is not None:
        item["input"] = value
    if ctx:
        item["ctx"] = ctx
    return item


def _validate(spec: Endpoint, given: dict[str, Any]) -> list[dict[str, Any]]:
    """fal's models are pydantic: missing fields, wrong types, out-of-range values;
    keys the schema lacks are ignored."""
    problems = [
        _problem(name, "Field required", "missing") for name in spec.required if name not in given
    ]
    for key, value in given.items():
        rule = spec.schema.get(key)
        if rule is None:
            continue
        kind = rule["type"]
        if kind == "image_size":
            if isinstance(value, str) and value not in PRESETS:
                problems.append(
                    _problem(key, f"Input should be {', '.join(PRESETS)}", "enum", value)
                )
            elif isinstance(value, dict) and not all(
                isinstance(value.get(k), int) and value[k] > 0 for k in ("width", "height")
            ):
                problems.append(
                    _problem(
                        key, "width and height must be positive integers", "value_error", value
                    )
                )
            elif not isinstance(value, (str, dict)):
                problems.append(
                    _problem(key, "Input should be a valid string or object", "type_error", value)
                )
        elif kind == "image_url":
            if not (
                isinstance(value, str) and value.startswith(("https://", "http://", "data:image/"))
            ):
                problems.append(
                    _problem(key, "Input should be a valid URL or data URI", "url_parsing", value)
                )
        elif kind == "image_urls":
            if not isinstance(value, list) or not value:
                problems.append(
                    _problem(key, "Input should be a non-empty list", "list_type", value)
                )
            elif len(value) > rule["max"]:
                problems.append(
                    _problem(key, f"List should have at most {rule['max']} items", "too_long")
                )
            elif not all(
                isinstance(v, str) and v.startswith(("https://", "http://", "data:image/"))
                for v in value
            ):
                problems.append(
                    _problem(key, "Input should be a valid URL or data URI", "url_parsing")
                )
        elif kind == "string":
            if not isinstance(value, str):
                problems.append(
                    _problem(key, "Input should be a valid string", "string_type", value)
                )
            elif "enum" in rule and value not in rule["enum"]:
                choices = ", ".join(repr(c) for c in rule["enum"])
                problems.append(_problem(key, f"Input should be {choices}", "enum", value))
        elif kind == "boolean":
            if not isinstance(value, bool):
                problems.append(
                    _problem(key, "Input should be a valid boolean", "bool_type", value)
                )
        else:  # integer | number
            types = (int,) if kind == "integer" else (int, float)
            if isinstance(value, bool) or not isinstance(value, types):
                problems.append(
                    _problem(key, f"Input should be a valid {kind}", f"{kind}_type", value)
                )
            elif "min" in rule and value < rule["min"]:
                problems.append(
                    _problem(
                        key,
                        f"Input should be greater than or equal to {rule['min']}",
                        "greater_than_equal",
                        value,
                        ge=rule["min"],
                    )
                )
            elif "max" in rule and value > rule["max"]:
                problems.append(
                    _problem(
                        key,
                        f"Input should be less than or equal to {rule['max']}",
                        "less_than_equal",
                        value,
                        le=rule["max"],
                    )
                )
    return problems
