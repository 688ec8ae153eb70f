"""A fake OpenAI Images API on 127.0.0.1, speaking the wire format imagen-openai uses.

It follows the real service as described in shared/reference/openai-images-api.md:
JSON ``/v1/images/generations``, multipart ``/v1/images/edits`` (``image`` or
``image[]``, ``mask``), ``/v1/models``; per-model validation (sizes, qualities, n,
parameters a model does not take answered as ``unknown_parameter``, as the API
does for ``response_format`` on the GPT image models); every error in OpenAI's
envelope ``{"error": {"message", "type", "param", "code"}}`` with its status; the
headers the SDK reads (``x-request-id``, ``retry-after``, ``x-should-retry``,
``x-ratelimit-*``, ``openai-version``); base64 answers with ``usage`` tokens for
the GPT image models and one-hour URLs for DALL-E.

Every request is recorded (method, path, headers, body, and for edits the parsed
form) so tests assert exactly what the adapter sent. Failures are scripted per
route with ``fail()``; ``hold()`` keeps generations waiting (for Ctrl-C and the
timeout), noticing when the client hangs up.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import secrets
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from tests import fake_http
from tests.fake_http import HUNG_UP, FakeHTTPServer, Reply

KEY = "sk-proj-Fake0123456789KeyNeverToBeSeen4567890abcdEFGH"
FORBIDDEN = "FORBIDDEN"  # a prompt with this word is refused by the "safety system"

GPT_SIZES = ["1024x1024", "1024x1536", "1536x1024", "auto"]
GPT_PARAMS = {
    "model", "prompt", "n", "size", "quality", "background", "output_format",
    "output_compression", "moderation", "user", "stream", "partial_images",
}  # fmt: skip
GPT_EDIT_PARAMS = (GPT_PARAMS - {"moderation"}) | {"image", "mask", "input_fidelity"}
# Output image tokens by quality and size (OpenAI's calculator, community thread 1275254).
GPT_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
IMAGE_INPUT_TOKENS = 323  # per input image of an edit (any fixed number: the fake's own)


@dataclass
class Model:
    name: str
    kind: str  # "gpt" | "dall-e-3" | "dall-e-2"
    sizes: list[str]
    qualities: list[str]
    params: set[str]
    edit_params: set[str] | None  # None: no edits
    max_n: int
    max_images: int = 0


MODELS = {
    name: Model(name, "gpt", GPT_SIZES, ["low", "medium", "high", "auto"], GPT_PARAMS,
                GPT_EDIT_PARAMS, 10, 16)
    for name in ("gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini")
}  # fmt: skip
MODELS["dall-e-3"] = Model(
    "dall-e-3",
    "dall-e-3",
    ["1024x1024", "1792x1024", "1024x1792"],
    ["standard", "hd"],
    {"model", "prompt", "n", "size", "quality", "style", "response_format", "user"},
    None,
    1,
)
MODELS["dall-e-2"] = Model(
    "dall-e-2",
    "dall-e-2",
    ["256x256", "512x512", "1024x1024"],
    ["standard"],
    {"model", "prompt", "n", "size", "quality", "response_format", "user"},
    {"model", "prompt", "n", "size", "response_format", "user", "image", "mask"},
    10,
    1,
)


@dataclass
class Part:
    name: str
    data: bytes
    filename: str | None
    content_type: str


@dataclass(repr=False)  # the method and path, as fake_http's
class Recorded(fake_http.Recorded):
    parts: list[Part] = field(default_factory=list)  # a multipart form, parsed

    @property
    def form(self) -> dict[str, str]:
        """The plain (non-file) form fields."""
        return {p.name: p.data.decode() for p in self.parts if p.filename is None}

    def files(self, name: str) -> list[Part]:
        return [p for p in self.parts if p.name == name and p.filename is not None]


def error(status: int, message: str, type_: str, param: str | None = None, code: str | None = None,
          headers: dict[str, str] | None = None, **more: Any) -> Reply:  # fmt: skip
    """An answer in OpenAI's error envelope."""
    inner = {"message": message, "type": type_, "param": param, "code": code, **more}
    return Reply(status, {"error": inner}, headers or {})


def rate_limited(retry_after: str | None = "2") -> Reply:
    headers = {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "12s",
    }
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return error(
        429,
        "Rate limit reached for gpt-image-1 in organization org-fake on images per minute "
        "(IPM): Limit 5, Used 5, Requested 1. Please try again in 12s.",
        "requests",
        None,
        "rate_limit_exceeded",
        headers,
    )


class FakeOpenAI(FakeHTTPServer):
    def __init__(self, *, key: str | None = KEY) -> None:
        super().__init__()
        self.key = key  # None: a compatible server that takes any (or no) key
        self.requests: list[Recorded] = []
        self.hangups = 0
        self.quota_exhausted = False
        self.answer_format: str | None = None  # None: per model; or "data-url" (some servers)
        # A compatible server (sd.cpp, LocalAI, imagen serve): any model name, any WxH, and
        # fields of its own (seed, steps, ...) taken; base64 answers without usage.
        self.compatible = False
        # With compatible: answer as imagen serve does, with its `imagen` object per image.
        self.imagen_report = False
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._by_prompt: dict[str, list[Reply]] = {}
        self._held = threading.Event()
        self._held.set()
        self.holding = threading.Event()  # set while a generation is being held
        self._files: dict[str, tuple[bytes, str]] = {}
        self.base_url = f"{self.url}/v1"

    def stop(self) -> None:
        self.release()
        super().stop()

    # ------------------------------------------------------------ test API

    def fail(self, route: str, *replies: Reply) -> None:
        """Answer the next requests of ``route`` (generations, edits, file) with these."""
        self._scripts.setdefault(route, []).extend(replies)

    def fail_prompt(self, word: str, *replies: Reply) -> None:
        """Answer the next generations whose prompt holds ``word`` with these (for
        jobs run in any order by a worker)."""
        self._by_prompt.setdefault(word, []).extend(replies)

    def hold(self) -> None:
        """Keep the next generations waiting until release() (or the client hangs up)."""
        self._held.clear()

    def release(self) -> None:
        self._held.set()

    @property
    def generations(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/images/generations"]

    @property
    def edits(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/images/edits"]

    @property
    def downloads(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/files/")]

    def extra_headers(self, target: str, reply: Reply) -> dict[str, str]:
        """What OpenAI sends with every API answer (the SDK reads x-request-id)."""
        if not target.startswith("/v1/"):
            return {}
        extra = {
            "x-request-id": f"req_{secrets.token_hex(16)}",
            "openai-version": "2020-10-01",
            "openai-organization": "org-fake",
        }
        if "x-ratelimit-limit-requests" not in {k.lower() for k in reply.headers}:
            extra["x-ratelimit-limit-requests"] = "5"
            extra["x-ratelimit-remaining-requests"] = "4"
            extra["x-ratelimit-reset-requests"] = "12s"
        return extra

    # ------------------------------------------------------------ routes

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        route = _route(method, path)
        with self._lock:
            recorded = Recorded(method, path, headers, body)
            if route == "edits":
                recorded.parts = _parse_form(headers.get("content-type", ""), body)
            self.requests.append(recorded)
            if route is None:
                return error(404, f"Invalid URL ({method} {path.split('?')[0]})",
                             "invalid_request_error")  # fmt: skip
            if route != "file":
                refused = self._refuse_key(headers)
                if refused is not None:
                    return refused
            script = self._scripts.get(route)
            if script:
                return script.pop(0)
            if route == "generations" and self._by_prompt:
                prompt = str(_json(body).get("prompt", ""))
                for word, replies in self._by_prompt.items():
                    if word in prompt and replies:
                        return replies.pop(0)
            if route == "file":
                return self._file(path)
            if route == "models":
                return self._models()
            if self.quota_exhausted:
                return error(
                    429,
                    "You exceeded your current quota, please check your plan and billing "
                    "details. For more information on this error, read the docs: "
                    "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                    "insufficient_quota",
                    None,
                    "insufficient_quota",
                )
        if not self._held.is_set() and route in ("generations", "edits"):
            self.holding.set()
            while not self._held.wait(0.02):
                if _hung_up(self.local.connection):
                    with self._lock:
                        self.hangups += 1
                    return Reply(HUNG_UP)
            self.holding.clear()
        if route == "generations":
            return self._generate(body)
        return self._edit(recorded)

    def _refuse_key(self, headers: dict[str, str]) -> Reply | None:
        if self.key is None:
            return None
        given = headers.get("authorization", "")
        if not given:
            return error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can obtain "
                "an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
            )
        key = given.removeprefix("Bearer ")
        if key != self.key:
            masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:]
            return error(
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                "invalid_api_key",
            )
        return None

    def _models(self) -> Reply:
        created = 1698785189
        data = [{"id": m, "object": "model", "created": created, "owned_by": "system"}
                for m in MODELS]  # fmt: skip
        return Reply(200, {"object": "list", "data": data})

    def _file(self, path: str) -> Reply:
        name = path.split("?")[0].rpartition("/")[2]
        found = self._files.get(name)
        if found is None:
            return Reply(404, b"<Error><Code>BlobNotFound</Code></Error>",
                         {"Content-Type": "application/xml"})  # fmt: skip
        return Reply(200, found[0], {"Content-Type": found[1]})

    def _generate(self, body: bytes) -> Reply:
        try:
            payload = json.loads(body)
        except ValueError:
            return error(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.)",
                "invalid_request_error",
            )
        return self._make(payload, [], None, edit=False)

    def _edit(self, recorded: Recorded) -> Reply:
        form: dict[str, Any] = dict(recorded.form)
        singles, arrays = recorded.files("image"), recorded.files("image[]")
        if singles and arrays:
            return error(400, "Provide either 'image' or 'image[]', not both.",
                         "invalid_request_error", "image")  # fmt: skip
        images = singles or arrays
        masks = recorded.files("mask")
        if not images:
            return error(400, "Missing required parameter: 'image'.", "invalid_request_error",
                         "image", "missing_required_parameter")  # fmt: skip
        form["image"] = True
        if masks:
            form["mask"] = True
        for key in ("n", "output_compression", "partial_images"):
            if key in form:
                try:
                    form[key] = int(form[key])
                except ValueError:
                    return error(400, f"Invalid type for '{key}': expected an integer, but got "
                                 "a string instead.", "invalid_request_error", key,
                                 "invalid_type")  # fmt: skip
        return self._make(form, images, masks[0] if masks else None, edit=True)

    def _make(self, payload: dict[str, Any], images: list[Part], mask: Part | None,
              *, edit: bool) -> Reply:  # fmt: skip
        name = payload.get("model")
        if not isinstance(name, str):
            return error(400, "Missing required parameter: 'model'.", "invalid_request_error",
                         "model", "missing_required_parameter")  # fmt: skip
        model = MODELS.get(name)
        if model is None and self.compatible:
            return self._compatible(payload, images)
        if model is None:
            return error(404, f"The model `{name}` does not exist or you do not have access "
                         "to it.", "invalid_request_error", None, "model_not_found")  # fmt: skip
        if edit and model.edit_params is None:
            return error(400, f"Invalid value: '{name}'. Value must be 'dall-e-2' or a GPT "
                         "image model.", "invalid_request_error", "model",
                         "invalid_value")  # fmt: skip
        allowed = model.edit_params if edit else model.params
        assert allowed is not None
        for key in payload:
            if key not in allowed:
                return error(400, f"Unknown parameter: '{key}'.", "invalid_request_error", key,
                             "unknown_parameter")  # fmt: skip
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return error(400, "Missing required parameter: 'prompt'.", "invalid_request_error",
                         "prompt", "missing_required_parameter")  # fmt: skip
        size = payload.get("size", "auto" if model.kind == "gpt" else "1024x1024")
        if size not in model.sizes:
            listed = ", ".join(f"'{s}'" for s in model.sizes[:-1]) + f", and '{model.sizes[-1]}'"
            return error(400, f"Invalid value: '{size}'. Supported values are: {listed}.",
                         "invalid_request_error", "size", "invalid_value")  # fmt: skip
        quality = payload.get("quality", "auto" if model.kind == "gpt" else "standard")
        if quality not in model.qualities:
            listed = ", ".join(f"'{q}'" for q in model.qualities)
            return error(400, f"Invalid value: '{quality}'. Supported values are: {listed}.",
                         "invalid_request_error", "quality", "invalid_value")  # fmt: skip
        n = payload.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= model.max_n:
            return error(400, f"Invalid 'n': integer above maximum value. Expected a value <= "
                         f"{model.max_n}, but got {n} instead.", "invalid_request_error", "n",
                         "integer_above_max_value")  # fmt: skip
        output_format = payload.get("output_format", "png")
        if output_format not in ("png", "jpeg", "webp"):
            return error(400, f"Invalid value: '{output_format}'. Supported values are: 'png', "
                         "'jpeg', and 'webp'.", "invalid_request_error", "output_format",
                         "invalid_value")  # fmt: skip
        background = payload.get("background", "auto")
        if background == "transparent" and output_format == "jpeg":
            return error(400, "Transparent background is not supported for jpeg output "
                         "format.", "invalid_request_error", "background")  # fmt: skip
        if images:
            problem = self._check_inputs(model, images, mask)
            if problem is not None:
                return problem
        if FORBIDDEN in prompt:
            return self._moderated(model)
        if size == "auto":
            size = "1024x1024"
        if quality == "auto":
            quality = "medium"
        width, height = (int(v) for v in size.split("x"))
        image, kind = _picture(prompt, width, height, output_format if model.kind == "gpt" else
                               "png", background == "transparent")  # fmt: skip
        item: dict[str, Any] = {}
        created = int(time.time())
        if model.kind == "gpt":
            item["b64_json"] = base64.b64encode(image).decode()
            text_tokens = len(prompt) // 4 + 1
            image_tokens = IMAGE_INPUT_TOKENS * len(images)
            output_tokens = GPT_TOKENS[quality][size]
            answer: dict[str, Any] = {
                "created": created,
                "data": [item],
                "background": "transparent" if background == "transparent" else "opaque",
                "output_format": output_format,
                "quality": quality,
                "size": size,
                "usage": {
                    "input_tokens": text_tokens + image_tokens,
                    "input_tokens_details": {"text_tokens": text_tokens,
                                             "image_tokens": image_tokens},
                    "output_tokens": output_tokens,
                    "total_tokens": text_tokens + image_tokens + output_tokens,
                    "output_tokens_details": {"text_tokens": 0, "image_tokens": output_tokens},
                },
            }  # fmt: skip
        else:
            if payload.get("response_format", "url") == "b64_json":
                item["b64_json"] = base64.b64encode(image).decode()
            else:
                file = f"img-{secrets.token_hex(12)}.png"
                self._files[file] = (image, kind)
                item["url"] = (f"{self.url}/files/{file}?st=2026-11-28T00%3A00%3A00Z&se="
                               "2026-11-28T01%3A00%3A00Z&sp=r&sig=fakeSignature%3D")  # fmt: skip
            if model.kind == "dall-e-3":
                item["revised_prompt"] = f"A detailed rendering of {prompt}"
            answer = {"created": created, "data": [item]}
        if self.answer_format == "data-url" and "b64_json" in item:
            item["b64_json"] = f"data:{kind};base64,{item['b64_json']}"
        return Reply(200, answer, {"openai-processing-ms": "2113"})

    def _compatible(self, payload: dict[str, Any], images: list[Part]) -> Reply:
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return Reply(400, {"error": "prompt required"})  # sd.cpp's shape, not OpenAI's
        width, height = (int(v) for v in str(payload.get("size", "512x512")).split("x"))
        image, _ = _picture(prompt, width, height, "png", False)
        item: dict[str, Any] = {"b64_json": base64.b64encode(image).decode()}
        if self.imagen_report:
            seed = payload.get("seed") or 4242  # seed 0 or none: the server picks one
            item["imagen"] = {"id": "2026-11-28/x.png", "url": "/images/2026-11-28/x.png",
                              "seed": int(seed), "cost_usd": 0.003, "backend": payload["model"],
                              "model": "flux1-schnell", "latency_s": 1.5}  # fmt: skip
        return Reply(200, {"created": int(time.time()), "data": [item], "output_format": "png"})

    def _check_inputs(self, model: Model, images: list[Part], mask: Part | None) -> Reply | None:
        if len(images) > model.max_images:
            return error(400, f"Invalid 'image': too many images. Expected at most "
                         f"{model.max_images}, but got {len(images)}.", "invalid_request_error",
                         "image", "invalid_value")  # fmt: skip
        sizes = []
        for part in images:
            try:
                with Image.open(io.BytesIO(part.data)) as picture:
                    fmt, sizes_ = picture.format, picture.size
            except OSError:
                return error(400, "Invalid image file or mode for image 1, please check your "
                             "image file.", "invalid_request_error", "image",
                             "invalid_image_file")  # fmt: skip
            sizes.append(sizes_)
            square_png = fmt == "PNG" and sizes_[0] == sizes_[1]
            if model.kind == "dall-e-2" and (not square_png or len(part.data) > 4 * 2**20):
                return error(400, "Uploaded image must be a PNG and less than 4 MB.",
                             "invalid_request_error", "image", "invalid_image")  # fmt: skip
            if fmt not in ("PNG", "JPEG", "WEBP"):
                return error(400, f"Invalid image file or mode for image {len(sizes)}, please "
                             "check your image file.", "invalid_request_error", "image",
                             "invalid_image_file")  # fmt: skip
        if mask is not None:
            with Image.open(io.BytesIO(mask.data)) as picture:
                fmt, size, mode = picture.format, picture.size, picture.mode
            if fmt != "PNG" or "A" not in mode:
                return error(400, "Invalid mask image - format must be a PNG with an alpha "
                             "channel.", "invalid_request_error", "mask",
                             "invalid_image_format")  # fmt: skip
            if size != sizes[0]:
                return error(400, "Invalid mask image - mask and image must have the same "
                             "dimensions.", "invalid_request_error", "mask",
                             "invalid_value")  # fmt: skip
        return None

    def _moderated(self, model: Model) -> Reply:
        rid = f"req_{secrets.token_hex(16)}"
        if model.kind == "gpt":
            return error(
                400,
                "Your request was rejected by the safety system. If you believe this is an "
                f"error, contact us at help.openai.com and include the request ID {rid}. "
                "safety_violations=[violence].",
                "image_generation_user_error",
                None,
                "moderation_blocked",
                moderation_details={"moderation_stage": "input", "categories": ["violence"]},
            )
        return error(
            400,
            "Your request was rejected as a result of our safety system. Your prompt may "
            "contain text that is not allowed by our safety system.",
            "invalid_request_error",
            None,
            "content_policy_violation",
        )


def _json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _route(method: str, path: str) -> str | None:
    path = path.split("?")[0]
    if method == "POST" and path == "/v1/images/generations":
        return "generations"
    if method == "POST" and path == "/v1/images/edits":
        return "edits"
    if method == "GET" and path == "/v1/models":
        return "models"
    if method == "GET" and path.startswith("/files/"):
        return "file"
    return None


def _parse_form(content_type: str, body: bytes) -> list[Part]:
    if not content_type.startswith("multipart/form-data"):
        return []
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts.append(
            Part(
                str(name),
                part.get_payload(decode=True) or b"",
                part.get_filename(),
                part.get_content_type(),
            )
        )
    return parts


def _picture(
    prompt: str, width: int, height: int, fmt: str, transparent: bool
) -> tuple[bytes, str]:
    """A real image of the size asked, in the format asked; its colour from the prompt."""
    shade = sum(prompt.encode()) % 256
    mode = "RGBA" if transparent and fmt != "jpeg" else "RGB"
    color = (shade, 80, 160, 0) if mode == "RGBA" else (shade, 80, 160)
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, {"png": "PNG", "jpeg": "JPEG",
                                                          "webp": "WEBP"}[fmt])  # fmt: skip
    return buffer.getvalue(), f"image/{fmt}"


def _hung_up(connection: socket.socket) -> bool:
    """Whether the client closed its side (readable, and nothing more to read)."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
