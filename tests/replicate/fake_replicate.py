"""A fake Replicate API on 127.0.0.1, speaking the wire protocol imagen-replicate uses.

It follows the real service as described in shared/reference/backend-apis.md §1,
including its traps: 201 on create; sync mode (``Prefer: wait=N``, N in 1..60)
answering ``processing`` with the output already present and no metrics;
``metrics.predict_time`` only on final predictions, and optionally only some polls
later; list vs string vs data: outputs depending on the model; inputs validated
against the model's schema at create time (422 problem+json, unknown keys
ignored as Cog does); 401 problem+json for a bad token; output files that expire
(404, or 403 as S3 says it); ``aborted`` besides the five documented statuses.

Input files as replicate-image-inputs.md describes them: ``POST /v1/files``
takes multipart/form-data with the file as the ``content`` part (its filename and
Content-Type kept) and answers 201 with the file object (``urls.get`` pointing
back at this server, ``expires_at`` a day later); ``GET``/``DELETE
/v1/files/{id}`` as documented (200 / 204, 404 after). A prediction input typed
as a URI must be an http(s) or data: URI (else 422); a data: URI is decoded, a
``/v1/files/`` URL of this server is looked up, and an input the fake cannot
read makes the prediction fail, as Replicate's do when it cannot fetch one. The
output picture is made from the first input image, so a test can check that the
image arrived.

Every request is recorded (method, path, headers, body) so that tests assert
exactly what the adapter sent. Failures are scripted per route with ``fail()``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.parser
import email.policy
import io
import json
import re
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from tests.fake_http import FakeHTTPServer, Recorded, Reply

__all__ = ["FakeReplicate", "Recorded", "Reply"]

TOKEN = "r8_Fake0123456789TokenNeverToBeSeen4567890"
PROBLEM = "application/problem+json"

ASPECT_11 = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]
OUTPUT_FORMATS = ["webp", "jpg", "png"]


@dataclass
class Model:
    """A model's input schema (as far as the fake validates it) and its output shape."""

    owner_name: str
    schema: dict[str, dict[str, Any]]
    output: str  # "list" | "string"
    default_format: str = "webp"
    version: str = "hidden"


URI = {"type": "string", "format": "uri"}
KONTEXT_RATIOS = [
    "match_input_image",
    "1:1",
    "16:9",
    "9:16",
    "4:3",
    "3:4",
    "3:2",
    "2:3",
    "4:5",
    "5:4",
    "21:9",
    "9:21",
    "2:1",
    "1:2",
]


def _flux(steps_max: int, extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "prompt": {"type": "string"},
        "aspect_ratio": {"type": "string", "enum": ASPECT_11},
        "num_outputs": {"type": "integer", "min": 1, "max": 4},
        "num_inference_steps": {"type": "integer", "min": 1, "max": steps_max},
        "seed": {"type": "integer"},
        "output_format": {"type": "string", "enum": OUTPUT_FORMATS},
        "output_quality": {"type": "integer", "min": 0, "max": 100},
        "disable_safety_checker": {"type": "boolean"},
        "go_fast": {"type": "boolean"},
        "megapixels": {"type": "string", "enum": ["1", "0.25"]},
        **(extra or {}),
    }


_SD35 = {
    "prompt": {"type": "string"},
    "image": URI,
    "prompt_strength": {"type": "number", "min": 0, "max": 1},
    "negative_prompt": {"type": "string"},
    "aspect_ratio": {"type": "string", "enum": ASPECT_11},
    "cfg": {"type": "number", "min": 1, "max": 10},
    "steps": {"type": "integer", "min": 1, "max": 50},
    "seed": {"type": "integer"},
    "output_format": {"type": "string", "enum": OUTPUT_FORMATS},
    "output_quality": {"type": "integer", "min": 0, "max": 100},
}

COMMUNITY_VERSION = "5f78b950" + "c" * 56
MODELS = {
    "black-forest-labs/flux-schnell": Model(
        "black-forest-labs/flux-schnell", _flux(4), "list", version="f2ab8a5b" + "0" * 56
    ),
    "black-forest-labs/flux-dev": Model(
        "black-forest-labs/flux-dev",
        _flux(
            50,
            {
                "guidance": {"type": "number", "min": 0, "max": 10},
                "image": URI,
                "prompt_strength": {"type": "number", "min": 0, "max": 1},
            },
        ),
        "list",
    ),
    "black-forest-labs/flux-1.1-pro": Model(
        "black-forest-labs/flux-1.1-pro",
        {
            "prompt": {"type": "string"},
            "aspect_ratio": {
                "type": "string",
                "enum": ["custom", "1:1", "16:9", "3:2", "2:3", "4:5", "5:4", "9:16", "3:4", "4:3"],
            },
            "width": {"type": "integer", "min": 256, "max": 1440, "multiple_of": 32},
            "height": {"type": "integer", "min": 256, "max": 1440, "multiple_of": 32},
            "seed": {"type": "integer"},
            "image_prompt": URI,
            "safety_tolerance": {"type": "integer", "min": 1, "max": 6},
            "output_format": {"type": "string", "enum": OUTPUT_FORMATS},
        },
        "string",
    ),
    "stability-ai/stable-diffusion-3.5-large": Model(
        "stability-ai/stable-diffusion-3.5-large", _SD35, "string"
    ),
    "ideogram-ai/ideogram-v3-turbo": Model(
        "ideogram-ai/ideogram-v3-turbo",
        {
            "prompt": {"type": "string"},
            "aspect_ratio": {"type": "string"},
            "seed": {"type": "integer", "min": 0, "max": 2147483647},
        },
        "string",
        default_format="png",
    ),
    # Image models (replicate-image-inputs.md §4): their image inputs and outputs.
    **{
        f"black-forest-labs/flux-kontext-{tier}": Model(
            f"black-forest-labs/flux-kontext-{tier}",
            {
                "prompt": {"type": "string"},
                "input_image": URI,
                "aspect_ratio": {"type": "string", "enum": KONTEXT_RATIOS},
                "seed": {"type": "integer"},
                "output_format": {"type": "string", "enum": ["jpg", "png"]},
                "safety_tolerance": {"type": "integer", "min": 0, "max": 6},
            },
            "string",
            default_format="png",
        )
        for tier in ("pro", "max")
    },
    "black-forest-labs/flux-fill-pro": Model(
        "black-forest-labs/flux-fill-pro",
        {
            "prompt": {"type": "string"},
            "image": {**URI, "required": True},
            "mask": URI,
            "steps": {"type": "integer", "min": 1, "max": 50},
            "guidance": {"type": "number", "min": 2, "max": 5},
            "seed": {"type": "integer"},
            "output_format": {"type": "string", "enum": ["jpg", "png"]},
        },
        "string",
        default_format="jpg",
    ),
    "google/nano-banana": Model(
        "google/nano-banana",
        {
            "prompt": {"type": "string"},
            "image_input": {"type": "array", "items": URI},
            "aspect_ratio": {"type": "string", "enum": ["match_input_image", *ASPECT_11[:5]]},
            "output_format": {"type": "string", "enum": ["jpg", "png"]},
        },
        "string",
        default_format="jpg",
    ),
    "openai/gpt-image-1": Model(
        "openai/gpt-image-1",
        {
            "prompt": {"type": "string"},
            "openai_api_key": {"type": "string", "required": True},
            "input_images": {"type": "array", "items": URI},
            "aspect_ratio": {"type": "string", "enum": ["1:1", "3:2", "2:3"]},
            "output_format": {"type": "string", "enum": ["png", "webp"]},
        },
        "list",
        default_format="webp",
    ),
    "bytedance/seedream-4": Model(
        "bytedance/seedream-4",
        {
            "prompt": {"type": "string"},
            "image_input": {"type": "array", "items": URI, "max_items": 10},
            "size": {"type": "string", "enum": ["1K", "2K", "4K", "custom"]},
            "aspect_ratio": {
                "type": "string",
                "enum": ["match_input_image", "1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3"],
            },
        },
        "list",
        default_format="jpg",
    ),
    "qwen/qwen-image-edit": Model(
        "qwen/qwen-image-edit",
        {"prompt": {"type": "string"}, "image": {**URI, "required": True}},
        "list",
    ),
    # A community model, run by version: SDXL-style inputs, billed per second.
    f"someone/sdxl-finetune:{COMMUNITY_VERSION}": Model(
        "someone/sdxl-finetune",
        {
            "prompt": {"type": "string"},
            "negative_prompt": {"type": "string"},
            "width": {"type": "integer", "min": 256, "max": 2048},
            "height": {"type": "integer", "min": 256, "max": 2048},
            "num_inference_steps": {"type": "integer", "min": 1, "max": 500},
            "guidance_scale": {"type": "number", "min": 1, "max": 50},
            "seed": {"type": "integer"},
        },
        "list",
        default_format="png",
        version=COMMUNITY_VERSION,
    ),
}


@dataclass
class Prediction:
    data: dict[str, Any]
    model: Model
    outcome: str
    gets: int = 0  # GETs served so far
    final_answers: int = 0  # answers (create or GET) served since it became final
    images: list[bytes] = field(default_factory=list)  # the input images, as resolved
    error: str | None = None  # why it fails, when an input could not be read
    starts: bool = True  # False: it fails without ever running (E6716)


class FakeReplicate(FakeHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.token = TOKEN
        self.requests: list[Recorded] = []
        self.predictions: dict[str, Prediction] = {}
        self.files: dict[str, dict[str, Any]] = {}  # id -> file object (+ "_data")
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._always: dict[str, Reply] = {}
        # What the next predictions do (tests change these):
        self.sync = "succeeded"  # answer to Prefer: wait: succeeded | processing | starting
        self.polls_to_finish = 2  # GETs answered "processing" before the final status
        self.outcome = "succeeded"  # succeeded | failed | canceled | aborted | running
        self.error: str | None = None
        # Failed and aborted predictions end without started_at when they never ran
        # (aborted always; failed with this set, as E6716 "timeout starting" does).
        self.fails_before_start = False
        self.start_after = 0  # GETs answered "starting" (a cold boot) before it runs
        # What the next predictions created do, before the settings above apply:
        # (outcome, error, fails_before_start) each.
        self.next_predictions: list[tuple[str, str | None, bool]] = []
        self.output_kind: str | None = None  # None: the model's own shape; or "data"
        self.metrics_after = 0  # answers of a final prediction that still lack predict_time
        self.predict_time = 1.5
        self.files_expired: int | None = None  # 404 or 403 for every output file
        self.data_removed = False  # final predictions come back with output removed
        self.file_host = "127.0.0.1"  # host named in output URLs
        self.file_content_type: str | None = None  # None: the image's own type
        self.echo_token_in_errors = False  # a hostile server repeating the header back

    def extra_headers(self, target: str, reply: Reply) -> dict[str, str]:
        if target.startswith("/v1/") and reply.status < 400:
            return {"ratelimit-remaining": "599", "ratelimit-reset": "1"}
        return {}

    # ------------------------------------------------------------ test API

    def fail(self, route: str, *replies: Reply) -> None:
        """Answer the next requests of ``route`` (create, get, cancel, file) with these."""
        self._scripts.setdefault(route, []).extend(replies)

    def fail_always(self, route: str, reply: Reply | None) -> None:
        """Answer every request of ``route`` with ``reply`` (None: stop), after the
        scripted ones: an outage that lasts."""
        if reply is None:
            self._always.pop(route, None)
        else:
            self._always[route] = reply

    def sent(self, method: str | None = None, prefix: str = "") -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and r.path.startswith(prefix)
        ]

    @property
    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/predictions")]

    @property
    def cancels(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/cancel")]

    @property
    def polls(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "GET" and "/v1/predictions/" in r.path]

    @property
    def uploads(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/files"]

    @property
    def downloads(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/files/")]

    # ------------------------------------------------------------ routes

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body))
            route = _route(method, path)
            if route is None:
                return _problem(404, "Not found", "The requested resource could not be found.")
            if route[0] != "file" and not self._authorized(headers):
                detail = "You did not pass a valid authentication token"
                if self.echo_token_in_errors:
                    detail += f" (got {headers.get('authorization', '')!r})"
                return _problem(401, "Unauthenticated", detail)
            script = self._scripts.get(route[0])
            if script:
                reply = script.pop(0)
                if self.echo_token_in_errors and isinstance(reply.body, dict):
                    reply.body["detail"] = f"{reply.body.get('detail')} {headers['authorization']}"
                return reply
            if route[0] in self._always:
                return self._always[route[0]]
            if route[0] == "upload":
                return self._upload(headers, body)
            if route[0] == "file_object":
                return self._file_object(method, route[1])
            return getattr(self, f"_{route[0]}")(headers, body, *route[1:])

    def _authorized(self, headers: dict[str, str]) -> bool:
        # Replicate takes "Bearer" and, for old clients, "Token".
        return headers.get("authorization") in (f"Bearer {self.token}", f"Token {self.token}")

    def _create(self, headers: dict[str, str], body: bytes, owner_name: str | None) -> Reply:
        try:
            payload = json.loads(body)
        except ValueError:
            return _problem(400, "Bad request", "The request body is not valid JSON.")
        if owner_name is None:  # POST /v1/predictions: the version names the model
            version = str(payload.get("version", ""))
            model = MODELS.get(version) or next(
                (m for k, m in MODELS.items() if k.endswith(f":{version}") or k == version), None
            )
            if model is None:
                return _problem(422, "Invalid version", "Invalid version or not permitted")
        else:
            model = MODELS.get(owner_name)
            if model is None or ":" in owner_name:
                return _problem(404, "Not found", "The requested resource could not be found.")
            if "version" in payload:
                return _problem(422, "Invalid request", "version is not allowed here")
        model_input = payload.get("input")
        if not isinstance(model_input, dict):
            return _problem(
                422, "Input validation failed", "- input: Invalid type. Expected: object"
            )
        problems = _validate(model.schema, model_input)
        if problems:
            return Reply(
                422,
                {
                    "title": "Input validation failed",
                    "detail": "".join(f"- input.{p}\n" for p in problems),
                    "status": 422,
                    "invalid_fields": [{"field": f"input.{p.split(':')[0]}"} for p in problems],
                },
                {"Content-Type": PROBLEM},
            )
        deadline = headers.get("cancel-after")
        if deadline is not None and not re.fullmatch(r"(\d+(ms|s|m|h))+", deadline):
            return _problem(400, "Invalid Cancel-After", f"cannot parse duration {deadline!r}")
        prefer = headers.get("prefer")
        wait = None
        if prefer is not None:
            match = re.fullmatch(r"wait(?:=(\d+))?", prefer.strip())
            if not match or (match[1] and not 1 <= int(match[1]) <= 60):
                return _problem(400, "Invalid Prefer header", f"cannot use Prefer: {prefer}")
            wait = int(match[1] or 60)
        prediction = self._new(model, model_input)
        unreadable = self._resolve(model, model_input, prediction)
        if unreadable is not None:
            prediction.outcome, prediction.error = "failed", unreadable
        extra = {"Location": prediction.data["urls"]["get"]}
        if wait is not None:
            extra["Preference-Applied"] = f"wait={wait}"
            if self.sync == "succeeded":
                self._finish(prediction)
                self._count_final(prediction)
            elif self.sync == "processing":
                prediction.data["status"] = "processing"
                prediction.data["started_at"] = _now()
                if prediction.outcome in ("succeeded", "running"):
                    prediction.data["output"] = self._output(prediction)
        return Reply(201, prediction.data, extra)

    def _get(self, _headers: dict[str, str], _body: bytes, pid: str) -> Reply:
        prediction = self.predictions.get(pid)
        if prediction is None:
            return _problem(404, "Not found", "The requested resource could not be found.")
        prediction.gets += 1
        data = prediction.data
        if data["status"] in ("starting", "processing"):
            if prediction.gets > self.start_after and not self._never_runs(prediction):
                data["status"] = "processing"
                data.setdefault("started_at", _now())
                data["logs"] = _logs(data["input"], prediction.gets, self.polls_to_finish)
            if prediction.gets < self.polls_to_finish or prediction.outcome == "running":
                return Reply(200, data)
            self._finish(prediction)
        self._count_final(prediction)
        return Reply(200, data)

    def _count_final(self, prediction: Prediction) -> None:
        # metrics.predict_time exists only on final predictions, and may show late.
        prediction.final_answers += 1
        if prediction.final_answers > self.metrics_after and prediction.data.get("started_at"):
            prediction.data["metrics"]["predict_time"] = self.predict_time

    def _cancel(self, _headers: dict[str, str], _body: bytes, pid: str) -> Reply:
        prediction = self.predictions.get(pid)
        if prediction is None:
            return _problem(404, "Not found", "The requested resource could not be found.")
        if prediction.data["status"] in ("starting", "processing"):
            prediction.data.update(status="canceled", completed_at=_now())
        return Reply(200, prediction.data)

    def _resolve(
        self, model: Model, model_input: dict[str, Any], prediction: Prediction
    ) -> str | None:
        """Read the input images; what could not be read, as Replicate's error says."""
        for key, spec in model.schema.items():
            if key not in model_input:
                continue
            if spec.get("format") == "uri":
                values = [model_input[key]]
            elif spec.get("type") == "array" and spec.get("items", {}).get("format") == "uri":
                values = list(model_input[key])
            else:
                continue
            for value in values:
                data = self._read_uri(value)
                if data is None:
                    return f"{key}: could not download {value[:60]}"
                prediction.images.append(data)
        return None

    def _read_uri(self, value: str) -> bytes | None:
        if value.startswith("data:"):
            header, _, payload = value.partition(",")
            if not header.endswith(";base64"):
                return None
            try:
                return base64.b64decode(payload, validate=True)
            except binascii.Error:
                return None
        prefix = f"{self.url}/v1/files/"
        if value.startswith(prefix):
            entry = self.files.get(value.removeprefix(prefix))
            return None if entry is None else entry["_data"]
        return None  # the fake reaches no other host

    def _upload(self, headers: dict[str, str], body: bytes) -> Reply:
        parts = _multipart(headers.get("content-type", ""), body)
        if parts is None or "content" not in parts or parts["content"][0] is None:
            return _problem(400, "Bad request", "The request must include a file as content")
        filename, kind, data = parts["content"]
        name = parts["filename"][2].decode() if "filename" in parts else filename
        kind = parts["type"][2].decode() if "type" in parts else kind or "application/octet-stream"
        fid = base64.b64encode(secrets.token_bytes(24)).decode().rstrip("=").replace("/", "_")
        created = dt.datetime.now(dt.timezone.utc)
        entry = {
            "id": fid,
            "name": name,
            "content_type": kind,
            "size": len(data),
            "etag": secrets.token_hex(16),
            "checksums": {"sha256": _sha256(data), "md5": secrets.token_hex(16)},
            "metadata": {},
            "created_at": _iso(created),
            "expires_at": _iso(created + dt.timedelta(days=1)),
            "urls": {"get": f"{self.url}/v1/files/{fid}"},
        }
        self.files[fid] = {**entry, "_data": data}
        return Reply(201, entry)

    def _file_object(self, method: str, fid: str) -> Reply:
        entry = self.files.get(fid)
        if entry is None:
            return _problem(404, "Not found", "The requested resource could not be found.")
        if method == "DELETE":
            del self.files[fid]
            return Reply(204, b"")
        return Reply(200, {k: v for k, v in entry.items() if k != "_data"})

    def _file(self, _headers: dict[str, str], _body: bytes, pid: str, name: str) -> Reply:
        if self.files_expired == 404:
            return Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        if self.files_expired == 403:
            return Reply(
                403,
                b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
                {"Content-Type": "application/xml"},
            )
        prediction = self.predictions.get(pid)
        if prediction is None:
            return Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        data, kind = self.image(prediction, name)
        return Reply(200, data, {"Content-Type": self.file_content_type or kind})

    # ------------------------------------------------------------ state

    def _new(self, model: Model, model_input: dict[str, Any]) -> Prediction:
        pid = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(26))
        base = f"http://127.0.0.1:{self.port}/v1/predictions/{pid}"
        data = {
            "id": pid,
            "model": model.owner_name,
            "version": model.version,
            "input": model_input,
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": "starting",
            "created_at": _now(),
            "metrics": {},
            "urls": {
                "get": base,
                "cancel": f"{base}/cancel",
                "web": f"https://replicate.com/p/{pid}",
                "stream": f"https://stream.replicate.com/v1/files/{pid}",
            },
        }
        outcome, error, before_start = self.outcome, self.error, self.fails_before_start
        if self.next_predictions:
            outcome, error, before_start = self.next_predictions.pop(0)
        prediction = Prediction(data, model, outcome, error=error, starts=not before_start)
        self.predictions[pid] = prediction
        return prediction

    def _finish(self, prediction: Prediction) -> None:
        data = prediction.data
        if not self._never_runs(prediction):
            data.setdefault("started_at", _now())
        data["completed_at"] = _now()
        data["status"] = prediction.outcome
        if prediction.outcome == "succeeded":
            data["output"] = self._output(prediction)
            if self.data_removed:  # as an hour after the prediction
                data.update(output=None, data_removed=True)
        elif prediction.outcome == "failed":
            data["error"] = prediction.error
        data["metrics"] = {"total_time": self.predict_time + 0.4}

    def _never_runs(self, prediction: Prediction) -> bool:
        return prediction.outcome == "aborted" or (
            prediction.outcome == "failed" and not prediction.starts
        )

    def _output(self, prediction: Prediction) -> Any:
        count = int(prediction.data["input"].get("num_outputs", 1))
        names = [f"out-{i}.{self._format(prediction)}" for i in range(count)]
        if self.output_kind == "data":
            urls = []
            for name in names:
                data, kind = self.image(prediction, name)
                urls.append(f"data:{kind};base64,{base64.b64encode(data).decode()}")
        else:
            pid = prediction.data["id"]
            urls = [f"http://{self.file_host}:{self.port}/files/{pid}/{name}" for name in names]
        return urls if prediction.model.output == "list" else urls[0]

    def _format(self, prediction: Prediction) -> str:
        return str(prediction.data["input"].get("output_format", prediction.model.default_format))

    def image(self, prediction: Prediction, name: str) -> tuple[bytes, str]:
        """The bytes served for an output file: a tiny real image in its format."""
        fmt = name.rpartition(".")[2]
        pil, kind = {
            "png": ("PNG", "image/png"),
            "jpg": ("JPEG", "image/jpeg"),
            "webp": ("WEBP", "image/webp"),
        }[fmt]
        seed = int(prediction.data["input"].get("seed", 0)) % 256
        buffer = io.BytesIO()
        if prediction.images:  # made from the first input image
            with Image.open(io.BytesIO(prediction.images[0])) as first:
                picture = first.convert("RGB").resize((16, 16))
        else:
            picture = Image.new("RGB", (16, 16), (seed, 64, 128))
        picture.save(buffer, pil)
        return buffer.getvalue(), kind


def _route(method: str, path: str) -> tuple[Any, ...] | None:
    """(handler name, its arguments) for a request, None for an unknown path."""
    path = path.split("?")[0]
    if method == "POST" and path == "/v1/predictions":
        return ("create", None)  # the model comes from the body's version
    if method == "POST" and (m := re.fullmatch(r"/v1/models/([^/]+)/([^/]+)/predictions", path)):
        return ("create", f"{m[1]}/{m[2]}")
    if method == "GET" and (m := re.fullmatch(r"/v1/predictions/([^/]+)", path)):
        return ("get", m[1])
    if method == "POST" and (m := re.fullmatch(r"/v1/predictions/([^/]+)/cancel", path)):
        return ("cancel", m[1])
    if method == "GET" and (m := re.fullmatch(r"/files/([^/]+)/([^/]+)", path)):
        return ("file", m[1], m[2])
    if method == "POST" and path == "/v1/files":
        return ("upload",)
    if method in ("GET", "DELETE") and (m := re.fullmatch(r"/v1/files/([^/]+)", path)):
        return ("file_object", m[1])
    return None


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, str, bytes]] | None:
    """The parts of a multipart/form-data body: name -> (filename, type, bytes)."""
    if not content_type.startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            data = part.get_payload(decode=True)
            parts[name] = (part.get_filename(), part.get_content_type(), data or b"")
    return parts


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _validate(schema: dict[str, dict[str, Any]], model_input: dict[str, Any]) -> list[str]:
    """Replicate validates inputs against the model's schema at create time; keys the
    schema lacks are ignored (Cog's pydantic default), as the real API does."""
    problems = []
    if not isinstance(model_input.get("prompt"), str):
        problems.append("prompt: prompt is required")
    for key, spec in schema.items():
        if spec.get("required") and key not in model_input:
            problems.append(f"{key}: {key} is required")
    types = {
        "string": (str,),
        "integer": (int,),
        "number": (int, float),
        "boolean": (bool,),
        "array": (list,),
    }
    for key, value in model_input.items():
        spec = schema.get(key)
        if spec is None:
            continue
        expected = types[spec["type"]]
        if not isinstance(value, expected) or (
            spec["type"] != "boolean" and isinstance(value, bool)
        ):
            given = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
                type(value), type(value).__name__
            )
            problems.append(f"{key}: Invalid type. Expected: {spec['type']}, given: {given}")
            continue
        if "enum" in spec and value not in spec["enum"]:
            choices = ", ".join(f'"{c}"' for c in spec["enum"])
            problems.append(f"{key}: {key} must be one of the following: {choices}")
        if "min" in spec and value < spec["min"]:
            problems.append(f"{key}: Must be greater than or equal to {spec['min']}")
        if "max" in spec and value > spec["max"]:
            problems.append(f"{key}: Must be less than or equal to {spec['max']}")
        if "multiple_of" in spec and value % spec["multiple_of"]:
            problems.append(f"{key}: Must be a multiple of {spec['multiple_of']}")
        items = value if spec["type"] == "array" else [value]
        wanted = spec.get("items", spec)
        if wanted.get("format") == "uri" and not all(
            isinstance(item, str) and item.startswith(("http://", "https://", "data:"))
            for item in items
        ):
            problems.append(f"{key}: Does not match format 'uri'")
        if "max_items" in spec and len(items) > spec["max_items"]:
            problems.append(f"{key}: Array must have at most {spec['max_items']} items")
    return problems


def _logs(model_input: dict[str, Any], done: int, total: int) -> str:
    lines = [f"Using seed: {model_input.get('seed', 0)}"]
    for step in range(min(done, total) + 1):
        pct = 100 * step // total if total else 100
        lines.append(
            f"{pct:3d}%|{'#' * (pct // 10):<10}| {step}/{total} [00:0{step}<00:00, 2.0it/s]"
        )
    return "\n".join(lines) + "\n"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _problem(status: int, title: str, detail: str) -> Reply:
    return Reply(
        status, {"title": title, "detail": detail, "status": status}, {"Content-Type": PROBLEM}
    )
