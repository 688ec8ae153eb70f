"""An in-process fake ComfyUI: HTTP and the websocket on one port (aiohttp), in a
thread with its own event loop, bound to 127.0.0.1 on an ephemeral port.

It follows the protocol captured from a real server (ComfyUI 0.3.64, see
shared/reference/comfyui-observed.md), not what would be convenient for a client:

- POST /prompt validates like ComfyUI: 400 bodies with ``error`` and
  ``node_errors`` (unknown class, missing input, wrong type, out of range, value
  not in list -- a missing model file --, link to a missing node, type mismatch),
  and a 200 that still carries ``node_errors`` when only some outputs validate;
- a prompt's messages go only to the socket of its ``client_id`` (nothing is
  buffered); ``status`` and ``execution_interrupted`` are broadcast;
- the message order of a real job (status, execution_start, execution_cached,
  progress_state, executing, progress + binary preview frames, executed,
  execution_success, status, executing null), with the history entry written
  between execution_success and executing null -- or later, with ``history_lag_s``;
- node outputs are cached across prompts: an identical resubmission runs nothing,
  sends no ``executing`` for cached nodes and points at the earlier files; as in
  ComfyUI's default (classic) cache, each prompt first drops the outputs of the
  nodes it does not have, so A, B, A runs A's nodes that B did not share again;
  a node is cached as soon as it ran, so an error or interrupt keeps the nodes
  that finished before it cached;
- one worker, prompts run one at a time in ``number`` order; /interrupt stops only
  the running prompt (between nodes and at sampler steps); POST /queue deletes
  pending ones; /view serves the saved bytes;
- POST /upload/image as server.py has it: multipart fields ``image`` (the file),
  ``type``, ``subfolder``, ``overwrite``; same name and same bytes is no new file,
  same name and other bytes is renamed ``name (1).png`` unless ``overwrite`` is
  "true"/"1"; a subfolder escaping the folder is a 400, no file a 400, an unknown
  type a 500; the answer ``{"name", "subfolder", "type"}``;
- LoadImage and LoadImageMask validate their file as ComfyUI does ("Invalid image
  file") and really decode the uploaded bytes: a graph that loads images is
  rendered from them (see ``Render``), so the output depends on the input.

Behaviour is scripted per test through ``FakeComfyUI.script`` and every HTTP
request and websocket event is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import io
import itertools
import json
import posixpath
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

MAX_SEED = 0xFFFFFFFFFFFFFFFF
SAMPLERS = ["euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_sde", "uni_pc"]
SCHEDULERS = [
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
]
CLIP_TYPES = ["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "flux", "flux2"]
DEFAULT_MODELS = {
    "checkpoints": [
        "flux1-schnell-fp8.safetensors",
        "sd3.5_medium_incl_clips_t5xxlfp8scaled.safetensors",
    ],
    "diffusion_models": ["flux-2-klein-4b.safetensors", "flux1-fill-dev.safetensors"],
    "text_encoders": ["qwen_3_4b.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"],
    "vae": ["flux2-vae.safetensors", "ae.safetensors"],
}
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
IMAGE_LOADERS = ("LoadImage", "LoadImageMask")
# What /object_info would list as LoadImage's choices (the top-level files of
# input/). Never used to validate: VALIDATE_INPUTS looks for the file itself.
INPUT_LISTING = ["example.png"]


def INT(default=0, lo=0, hi=MAX_SEED, step=1):
    return ("INT", {"default": default, "min": lo, "max": hi, "step": step})


def FLOAT(default=0.0, lo=0.0, hi=100.0):
    return ("FLOAT", {"default": default, "min": lo, "max": hi, "step": 0.1})


STRING = ("STRING", {"multiline": True})
BOOLEAN = ("BOOLEAN", {"default": True})


def COMBO(options):
    return (list(options), {})


@dataclass
class Spec:
    required: dict[str, tuple[Any, dict]]
    outputs: list[str] = field(default_factory=list)
    output_node: bool = False
    optional: dict[str, tuple[Any, dict]] = field(default_factory=dict)
    # VALIDATE_INPUTS: input name -> check of the value (an error text, or None);
    # as in ComfyUI, such an input skips the list-of-choices check.
    validate: dict[str, Callable[[Any], str | None]] = field(default_factory=dict)


def node_specs(
    models: dict[str, list[str]], inputs: Callable[[str], bytes | None] = lambda _: None
) -> dict[str, Spec]:
    """The node classes the fake knows. ``inputs`` finds a file of input/ by the
    value LoadImage takes (``sub/name.png``), for its validation."""
    size = INT(1024, 16, 16384, 16)

    def image_file(value: Any) -> str | None:
        return None if inputs(str(value)) is not None else f"Invalid image file: {value}"

    return {
        "CheckpointLoaderSimple": Spec(
            {"ckpt_name": COMBO(models.get("checkpoints", []))}, ["MODEL", "CLIP", "VAE"]
        ),
        "UNETLoader": Spec(
            {
                "unet_name": COMBO(models.get("diffusion_models", [])),
                "weight_dtype": COMBO(["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]),
            },
            ["MODEL"],
        ),
        "CLIPLoader": Spec(
            {"clip_name": COMBO(models.get("text_encoders", [])), "type": COMBO(CLIP_TYPES)},
            ["CLIP"],
            optional={"device": COMBO(["default", "cpu"])},
        ),
        "VAELoader": Spec({"vae_name": COMBO(models.get("vae", []))}, ["VAE"]),
        "CLIPTextEncode": Spec({"text": STRING, "clip": ("CLIP", {})}, ["CONDITIONING"]),
        "ConditioningZeroOut": Spec({"conditioning": ("CONDITIONING", {})}, ["CONDITIONING"]),
        "EmptySD3LatentImage": Spec(
            {"width": size, "height": size, "batch_size": INT(1, 1, 4096)}, ["LATENT"]
        ),
        "EmptyFlux2LatentImage": Spec(
            {"width": size, "height": size, "batch_size": INT(1, 1, 4096)}, ["LATENT"]
        ),
        "KSampler": Spec(
            {
                "model": ("MODEL", {}),
                "seed": INT(0, 0, MAX_SEED),
                "steps": INT(20, 1, 10000),
                "cfg": FLOAT(8.0, 0.0, 100.0),
                "sampler_name": COMBO(SAMPLERS),
                "scheduler": COMBO(SCHEDULERS),
                "positive": ("CONDITIONING", {}),
                "negative": ("CONDITIONING", {}),
                "latent_image": ("LATENT", {}),
                "denoise": FLOAT(1.0, 0.0, 1.0),
            },
            ["LATENT"],
        ),
        "CFGGuider": Spec(
            {
                "model": ("MODEL", {}),
                "positive": ("CONDITIONING", {}),
                "negative": ("CONDITIONING", {}),
                "cfg": FLOAT(8.0, 0.0, 100.0),
            },
            ["GUIDER"],
        ),
        "KSamplerSelect": Spec({"sampler_name": COMBO(SAMPLERS)}, ["SAMPLER"]),
        "Flux2Scheduler": Spec(
            {"steps": INT(20, 1, 4096), "width": size, "height": size}, ["SIGMAS"]
        ),
        "RandomNoise": Spec({"noise_seed": INT(0, 0, MAX_SEED)}, ["NOISE"]),
        "SamplerCustomAdvanced": Spec(
            {
                "noise": ("NOISE", {}),
                "guider": ("GUIDER", {}),
                "sampler": ("SAMPLER", {}),
                "sigmas": ("SIGMAS", {}),
                "latent_image": ("LATENT", {}),
            },
            ["LATENT", "LATENT"],
        ),
        "VAEDecode": Spec({"samples": ("LATENT", {}), "vae": ("VAE", {})}, ["IMAGE"]),
        "SaveImage": Spec(
            {"images": ("IMAGE", {}), "filename_prefix": ("STRING", {"default": "ComfyUI"})},
            output_node=True,
        ),
        "PreviewImage": Spec({"images": ("IMAGE", {})}, output_node=True),
        "SaveImageWebsocket": Spec({"images": ("IMAGE", {})}, output_node=True),
        "EmptyImage": Spec(
            {
                "width": INT(512, 1, 16384),
                "height": INT(512, 1, 16384),
                "batch_size": INT(1, 1, 4096),
                "color": INT(0, 0, 0xFFFFFF),
            },
            ["IMAGE"],
        ),
        "ImageInvert": Spec({"image": ("IMAGE", {})}, ["IMAGE"]),
        # Image inputs (nodes.py, comfy_extras): the files of input/ are the
        # choices; VALIDATE_INPUTS checks that the file exists.
        "LoadImage": Spec(
            {"image": (INPUT_LISTING, {"image_upload": True})},
            ["IMAGE", "MASK"],
            validate={"image": image_file},
        ),
        "LoadImageMask": Spec(
            {
                "image": (INPUT_LISTING, {"image_upload": True}),
                "channel": COMBO(["alpha", "red", "green", "blue"]),
            },
            ["MASK"],
            validate={"image": image_file},
        ),
        "ImageScaleToTotalPixels": Spec(
            {
                "image": ("IMAGE", {}),
                "upscale_method": COMBO(UPSCALE_METHODS),
                "megapixels": FLOAT(1.0, 0.01, 16.0),
                "resolution_steps": INT(1, 1, 256),
            },
            ["IMAGE"],
        ),
        "GetImageSize": Spec({"image": ("IMAGE", {})}, ["INT", "INT", "INT"]),
        "VAEEncode": Spec({"pixels": ("IMAGE", {}), "vae": ("VAE", {})}, ["LATENT"]),
        "ReferenceLatent": Spec(
            {"conditioning": ("CONDITIONING", {})},
            ["CONDITIONING"],
            optional={"latent": ("LATENT", {})},
        ),
        "InpaintModelConditioning": Spec(
            {
                "positive": ("CONDITIONING", {}),
                "negative": ("CONDITIONING", {}),
                "vae": ("VAE", {}),
                "pixels": ("IMAGE", {}),
                "mask": ("MASK", {}),
                "noise_mask": BOOLEAN,
            },
            ["CONDITIONING", "CONDITIONING", "LATENT"],
        ),
        "SetLatentNoiseMask": Spec({"samples": ("LATENT", {}), "mask": ("MASK", {})}, ["LATENT"]),
        "DifferentialDiffusion": Spec({"model": ("MODEL", {})}, ["MODEL"]),
        "DualCLIPLoader": Spec(
            {
                "clip_name1": COMBO(models.get("text_encoders", [])),
                "clip_name2": COMBO(models.get("text_encoders", [])),
                "type": COMBO(["sdxl", "sd3", "flux", "hunyuan_video", "hidream"]),
            },
            ["CLIP"],
            optional={"device": COMBO(["default", "cpu"])},
        ),
        "FluxGuidance": Spec(
            {"conditioning": ("CONDITIONING", {}), "guidance": FLOAT(3.5, 0.0, 100.0)},
            ["CONDITIONING"],
        ),
    }


SAMPLER_CLASSES = ("KSampler", "SamplerCustomAdvanced")
# The loaders of a diffusion model's weights, and the input naming the file.
MODEL_LOADERS = {"CheckpointLoaderSimple": "ckpt_name", "UNETLoader": "unet_name"}
IMAGE_OUTPUTS = ("SaveImage", "PreviewImage")


@dataclass
class Script:
    """What the fake does differently in one test."""

    delay_s: float = 0.0  # work per prompt, spread over the sampler steps
    history_lag_s: float = 0.0  # history written this long after execution_success
    ws_enabled: bool = True  # False: the /ws upgrade is refused (like a proxy without ws)
    drop_ws_after: str | None = None  # close the job's socket after sending this type
    silent_after: str | None = None  # stop delivering to the job's socket after this type
    fail_class: str | None = None  # a node of this class raises -> execution_error
    fail_message: str = "CUDA out of memory. Tried to allocate 2.00 GiB"
    fail_type: str = "torch.OutOfMemoryError"
    previews: bool = True  # binary preview frames at each sampler step
    foreign_noise: bool = False  # broadcasts of another client's prompt during ours
    on_start: Callable[[str], None] | None = None  # called at execution_start (loop thread)
    view_failures: int = 0  # answer this many /view requests with a 500 first
    upload_failures: int = 0  # answer this many /upload/image requests with a 500 first
    # Loading other model weights than the previous prompt's (a GPU holds one
    # model): this long, before the prompt's own work. Charged on the model
    # files alone, whether or not the prompt's loader nodes are cached.
    model_switch_s: float = 0.0


@dataclass(order=True)
class Item:
    number: float
    seq: int
    prompt_id: str = field(compare=False)
    graph: dict = field(compare=False)
    extra_data: dict = field(compare=False)
    outputs: list[str] = field(compare=False)
    delay_s: float | None = field(default=None, compare=False)  # None: the script's

    def as_list(self) -> list:
        number = int(self.number) if float(self.number).is_integer() else self.number
        return [number, self.prompt_id, self.graph, self.extra_data, self.outputs]


class FakeComfyUI:
    def __init__(self, models: dict[str, list[str]] | None = None) -> None:
        self.script = Script()
        self.models = {k: list(v) for k, v in (models or DEFAULT_MODELS).items()}
        self.requests: list[dict[str, Any]] = []  # every HTTP request, in order
        self.events: list[tuple[float, str, Any]] = []  # ws connects, sends, completions
        self.history: dict[str, dict] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}  # (type, subfolder, name) -> bytes
        self.uploads: list[dict[str, Any]] = []  # each POST /upload/image: its fields, answer
        self.max_upload_size = 100 * 2**20  # ComfyUI's --max-upload-size (100 MB), before start
        self.completed_at: dict[str, float] = {}  # prompt_id -> perf_counter at success sent
        self.loaded: tuple[str, ...] = ()  # the model files of the last prompt that ran
        self.model_switches = 0  # prompts charged script.model_switch_s
        self._queue: list[Item] = []
        self._running: Item | None = None
        self._current_node: str | None = None
        self._interrupt = False
        self._counter = 0
        self._seq = itertools.count()
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._silenced: set[str] = set()
        # node signature -> outputs (None: no UI output); only the last prompt's nodes
        self._cache: dict[str, Any] = {}
        self._counters: dict[tuple[str, str], int] = {}
        self._pngs: dict[tuple[int, int], bytes] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Future] = set()  # keeps scheduled broadcasts alive
        self._stopping = threading.Lock()
        self._stopped = False
        self.url = ""

    # ------------------------------------------------------------- lifecycle
    def start(self) -> FakeComfyUI:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._wake = asyncio.Event()
        app = web.Application(client_max_size=self.max_upload_size)
        routes = [
            web.post("/prompt", self.post_prompt),
            web.get("/prompt", self.get_prompt),
            web.get("/history", self.get_history_all),
            web.get("/history/{prompt_id}", self.get_history),
            web.post("/history", self.post_history),
            web.get("/queue", self.get_queue),
            web.post("/queue", self.post_queue),
            web.post("/interrupt", self.post_interrupt),
            web.get("/view", self.get_view),
            web.post("/upload/image", self.upload_image),
            web.get("/system_stats", self.get_system_stats),
            web.get("/ws", self.websocket),
        ]
        app.add_routes(routes)
        # Every API route also exists under /api, as on the real server.
        app.add_routes([web.route(r.method, "/api" + r.path, r.handler) for r in routes])
        app.middlewares.append(self._record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._worker = asyncio.ensure_future(self._work())

    def stop(self) -> None:
        """Close the sockets and the port (like a server that dies); safe to repeat."""
        with self._stopping:
            if self._stopped:
                return
            self._stopped = True

        async def shutdown() -> None:
            self._worker.cancel()
            for ws in list(self._sockets.values()):
                await ws.close()
            await self._runner.cleanup()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func`` in the fake's loop thread and return its result."""

        async def run() -> Any:
            return func()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # ------------------------------------------------------------- for tests
    def seen(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in list(self.requests) if r["method"] == method and r["path"] == path]

    def event_names(self, kind: str) -> list[Any]:
        return [data for _, name, data in list(self.events) if name == kind]

    def delete_file(self, kind: str, subfolder: str, filename: str) -> None:
        self.call(lambda: self.files.pop((kind, subfolder, filename)))

    def input_file(self, value: str) -> bytes | None:
        """The bytes of the input file LoadImage names with ``value``
        (``sub/name.png``, optionally annotated ``name.png [output]``)."""
        kind = "input"
        for annotation in ("input", "output", "temp"):
            if value.endswith(f" [{annotation}]"):
                value, kind = value[: -len(annotation) - 3], annotation
        subfolder, _, name = value.rpartition("/")
        return self.files.get((kind, subfolder, name))

    def queue_foreign(self, delay_s: float = 1.0) -> str:
        """Queue a prompt of another client (no client_id) that keeps the worker busy."""
        graph = {
            "1": {
                "class_type": "EmptyImage",
                "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1},
            },
            "2": {
                "class_type": "SaveImage",
                "inputs": {"images": ["1", 0], "filename_prefix": "other"},
            },
        }
        prompt_id = str(uuid.uuid4())

        def enqueue() -> None:
            graph["1"]["inputs"]["color"] = next(self._seq) + 1  # never cached
            item = Item(self._counter, next(self._seq), prompt_id, graph, {}, ["2"], delay_s)
            self._counter += 1
            self._enqueue(item)

        self.call(enqueue)
        return prompt_id

    # ------------------------------------------------------------- HTTP
    @web.middleware
    async def _record(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        body: Any = None
        # A multipart body is left to the handler (read here, it could not be
        # parsed there); POST /upload/image records its fields in ``uploads``.
        if (
            request.method == "POST"
            and request.can_read_body
            and not request.content_type.startswith("multipart/")
        ):
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
        path = request.path.removeprefix("/api")
        self.requests.append(
            {
                "method": request.method,
                "path": path,
                "query": dict(request.query),
                "body": body,
                "time": time.perf_counter(),
            }
        )
        return await handler(request)

    async def post_prompt(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.read())
        except ValueError:
            return web.Response(
                status=500,
                text="500 Internal Server Error\n\nServer got itself in trouble",
                content_type="text/plain",
            )
        if "number" in data:
            number = float(data["number"])
        else:
            number = -self._counter if data.get("front") else self._counter
            self._counter += 1
        if "prompt" not in data:
            return _error(400, "no_prompt", "No prompt provided", "No prompt provided", {})
        graph = data["prompt"]
        prompt_id = data.get("prompt_id") or str(uuid.uuid4())
        outcome = self._validate(graph)
        if isinstance(outcome, web.Response):
            return outcome
        good, node_errors = outcome
        extra = dict(data.get("extra_data") or {})
        if "client_id" in data:
            extra["client_id"] = data["client_id"]
        self._enqueue(Item(number, next(self._seq), prompt_id, graph, extra, good))
        return web.json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": node_errors}
        )

    async def get_prompt(self, _request: web.Request) -> web.Response:
        return web.json_response({"exec_info": {"queue_remaining": self._remaining()}})

    async def get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def get_history_all(self, request: web.Request) -> web.Response:
        items = list(self.history.items())
        if "max_items" in request.query:
            items = items[-int(request.query["max_items"]) :]
        return web.json_response(dict(items))

    async def post_history(self, request: web.Request) -> web.Response:
        data = await request.json()
        if data.get("clear"):
            self.history.clear()
        for prompt_id in data.get("delete", []):
            self.history.pop(prompt_id, None)
        return web.Response(status=200)

    async def get_queue(self, _request: web.Request) -> web.Response:
        running = [self._running.as_list()] if self._running else []
        pending = [item.as_list() for item in self._queue]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def post_queue(self, request: web.Request) -> web.Response:
        data = await request.json()
        if data.get("clear"):
            self._queue.clear()
        if "delete" in data:
            doomed = set(data["delete"])
            self._queue = [item for item in self._queue if item.prompt_id not in doomed]
            heapq.heapify(self._queue)
        await self._broadcast(self._status())
        return web.Response(status=200)

    async def post_interrupt(self, request: web.Request) -> web.Response:
        data = None
        # (can_read_body is False here: the recording middleware read the body.)
        with contextlib.suppress(ValueError):
            raw = await request.read()
            data = json.loads(raw) if raw else None
        wanted = data.get("prompt_id") if isinstance(data, dict) else None
        # With a prompt_id only that prompt, and only while it runs; else whatever runs.
        if self._running and (wanted is None or wanted == self._running.prompt_id):
            self._interrupt = True
        return web.Response(status=200)

    async def get_view(self, request: web.Request) -> web.Response:
        if self.script.view_failures > 0:
            self.script.view_failures -= 1
            return web.Response(status=500, text="500 Internal Server Error")
        query = request.query
        name = query.get("filename")
        kind = query.get("type", "output")
        subfolder = query.get("subfolder", "")
        if kind not in ("output", "input", "temp"):
            return web.Response(status=400)
        if not name:
            return web.Response(status=404)
        if ".." in name or name.startswith("/"):
            return web.Response(status=400)
        if ".." in subfolder or subfolder.startswith("/"):
            return web.Response(status=403)
        data = self.files.get((kind, subfolder, name))
        if data is None:
            return web.Response(status=404)
        return web.Response(
            body=data,
            content_type="image/png",
            headers={"Content-Disposition": f'filename="{name}"'},
        )

    async def upload_image(self, request: web.Request) -> web.Response:
        """server.py's image_upload: the same fields, renames and answers."""
        post = await request.post()
        image = post.get("image")
        overwrite = post.get("overwrite")
        kind = post.get("type")
        subfolder = post.get("subfolder", "")
        record: dict[str, Any] = {
            "type": kind,
            "subfolder": subfolder,
            "overwrite": overwrite,
            "filename": getattr(image, "filename", None),
            "content_type": getattr(image, "content_type", None),
        }
        self.uploads.append(record)
        if self.script.upload_failures > 0:
            self.script.upload_failures -= 1
            record["answer"] = 500
            return web.Response(status=500, text="500 Internal Server Error")
        kind = "input" if kind is None else kind
        if kind not in ("input", "temp", "output"):
            # get_dir_by_type leaves its directory unbound: an UnboundLocalError.
            return web.Response(
                status=500,
                text="500 Internal Server Error\n\nServer got itself in trouble",
                content_type="text/plain",
            )
        if not image:
            return web.Response(status=400)
        if not isinstance(image, web.FileField):
            # A plain text field named image: ``image.file`` raises in ComfyUI.
            return web.Response(
                status=500,
                text="500 Internal Server Error\n\nServer got itself in trouble",
                content_type="text/plain",
            )
        filename = image.filename
        if not filename:
            return web.Response(status=400)
        data = image.file.read()
        root = "/comfyui/" + kind
        folder = posixpath.join(root, posixpath.normpath(str(subfolder)))
        path = posixpath.abspath(posixpath.join(folder, filename))
        if posixpath.commonpath((root, path)) != root:
            return web.Response(status=400)
        if posixpath.dirname(path) != posixpath.abspath(folder):
            # A name with a "/" in it: ComfyUI only creates the subfolder itself.
            return web.Response(status=500, text="500 Internal Server Error")
        where = posixpath.relpath(posixpath.abspath(folder), root)
        where = "" if where == "." else where
        stem, ext = posixpath.splitext(filename)
        duplicate = False
        if overwrite not in ("true", "1"):
            number = 1
            while (kind, where, filename) in self.files:
                if _sha256(self.files[(kind, where, filename)]) == _sha256(data):
                    duplicate = True  # the same bytes under the same name: kept as it is
                    break
                filename = f"{stem} ({number}){ext}"
                number += 1
        if not duplicate:
            self.files[(kind, where, filename)] = data
        answer = {"name": filename, "subfolder": subfolder, "type": kind}
        record.update(answer=answer, size=len(data), written=not duplicate)
        return web.json_response(answer)

    def system_stats_body(self) -> dict:
        """What ComfyUI 0.3.64 answers on a CPU machine (comfyui-observed.md)."""
        return {
            "system": {
                "os": "posix",
                "ram_total": 25276514304,
                "ram_free": 24418820096,
                "comfyui_version": "0.3.64",
                "required_frontend_version": "1.27.10",
                "installed_templates_version": "0.1.95",
                "required_templates_version": "0.1.95",
                "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
                "pytorch_version": "2.13.0+cpu",
                "embedded_python": False,
                "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"],
            },
            "devices": [
                {
                    "name": "cpu",
                    "type": "cpu",
                    "index": None,
                    "vram_total": 25276514304,
                    "vram_free": 24418820096,
                    "torch_vram_total": 25276514304,
                    "torch_vram_free": 24418820096,
                }
            ],
        }

    async def get_system_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.system_stats_body())

    # ------------------------------------------------------------- websocket
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.script.ws_enabled:
            return web.Response(status=404)
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        old = self._sockets.get(client_id)
        self._sockets[client_id] = ws  # a second socket with the same id replaces the first
        if old is not None:
            await old.close()
        self.events.append((time.perf_counter(), "ws_connect", client_id))
        status = self._status()
        status["data"]["sid"] = client_id
        await ws.send_str(json.dumps(status))
        if self._running and self._running.extra_data.get("client_id") == client_id:
            # Reconnect replay: the current node, without a prompt_id.
            await ws.send_str(
                json.dumps({"type": "executing", "data": {"node": self._current_node}})
            )
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            if self._sockets.get(client_id) is ws:
                del self._sockets[client_id]
            self.events.append((time.perf_counter(), "ws_close", client_id))
        return ws

    async def _send(self, client_id: str | None, kind: str, data: dict) -> None:
        """A job message: only to the job's own socket, never buffered. A prompt
        without client_id sends only its progress, to every socket."""
        if client_id is None:
            if kind in ("progress", "progress_state"):
                await self._broadcast({"type": kind, "data": data})
            return
        await self._deliver(client_id, json.dumps({"type": kind, "data": data}), kind)

    async def _deliver(self, client_id: str, payload: str | bytes, kind: str) -> None:
        ws = self._sockets.get(client_id)
        if ws is None or ws.closed or client_id in self._silenced:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            if isinstance(payload, bytes):
                await ws.send_bytes(payload)
            else:
                await ws.send_str(payload)
        self.events.append((time.perf_counter(), "sent", (client_id, kind)))
        if kind == self.script.silent_after:
            self._silenced.add(client_id)  # the socket stays open and says nothing more
        if kind == self.script.drop_ws_after:
            await ws.close()

    async def _broadcast(self, message: dict) -> None:
        payload = json.dumps(message)
        for client_id in list(self._sockets):
            await self._deliver(client_id, payload, message["type"])

    def _status(self) -> dict:
        return {
            "type": "status",
            "data": {"status": {"exec_info": {"queue_remaining": self._remaining()}}},
        }

    def _remaining(self) -> int:
        return len(self._queue) + (1 if self._running else 0)

    # ------------------------------------------------------------- validation
    def _validate(self, graph: Any) -> web.Response | tuple[list[str], dict]:
        specs = node_specs(self.models, self.input_file)
        if not isinstance(graph, dict):
            return _error(400, "prompt_no_outputs", "Prompt has no outputs", "", {})
        for node_id, node in graph.items():
            if not isinstance(node, dict) or "class_type" not in node:
                return _error(
                    400,
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{node_id}'",
                    {},
                )
            if node["class_type"] not in specs:
                return _error(
                    400,
                    "invalid_prompt",
                    f"Cannot execute because node {node['class_type']} does not exist.",
                    f"Node ID '#{node_id}'",
                    {},
                )
        outputs = [n for n, node in graph.items() if specs[node["class_type"]].output_node]
        if not outputs:
            return _error(400, "prompt_no_outputs", "Prompt has no outputs", "", {})
        node_errors: dict[str, dict] = {}
        good, own = [], []
        for output in outputs:
            checked: dict[str, bool] = {}
            ok = self._check(graph, output, specs, checked, node_errors, output)
            if ok:
                good.append(output)
            else:
                own += node_errors.get(output, {}).get("errors", [])
        if not good:
            details = "\n".join(f"{e['message']}: {e['details']}" for e in own if e["details"])
            return _error(
                400,
                "prompt_outputs_failed_validation",
                "Prompt outputs failed validation",
                details,
                node_errors,
            )
        return good, node_errors

    def _check(self, graph, node_id, specs, checked, node_errors, output) -> bool:
        if node_id in checked:
            return checked[node_id]
        checked[node_id] = True
        node = graph[node_id]
        spec = specs[node["class_type"]]
        inputs = node.get("inputs", {})
        errors: list[dict] = []
        valid = True
        for name, (kind, options) in {**spec.required, **spec.optional}.items():
            if name not in inputs:
                if name in spec.required:
                    errors.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": name,
                            "extra_info": {"input_name": name},
                        }
                    )
                continue
            value = inputs[name]
            config = [kind, options]
            if _is_link(value):
                source, index = value[0], int(value[1])
                if source not in graph:
                    errors.append(
                        {
                            "type": "exception_during_validation",
                            "message": "Exception when validating node",
                            "details": f"'{source}'",
                            "extra_info": {
                                "exception_type": "KeyError",
                                "traceback": ['  File "execution.py", line 1, in validate\n'],
                            },
                        }
                    )
                    continue
                produced = specs[graph[source]["class_type"]].outputs
                received = produced[index] if index < len(produced) else "*"
                if isinstance(kind, str) and received != kind:
                    details = f"{name}, received_type({received}) mismatch input_type({kind})"
                    errors.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": details,
                            "extra_info": {
                                "input_name": name,
                                "input_config": config,
                                "received_type": received,
                                "linked_node": value,
                            },
                        }
                    )
                    continue
                if not self._check(graph, source, specs, checked, node_errors, output):
                    valid = False
                continue
            check = spec.validate.get(name)
            if check is not None:
                problem = check(value)
                if problem is not None:
                    errors.append(
                        {
                            "type": "custom_validation_failed",
                            "message": "Custom validation failed for node",
                            "details": f"{name} - {problem}",
                            "extra_info": {"input_name": name},
                        }
                    )
                continue
            errors += _check_value(name, value, kind, options, config)
        if errors:
            entry = node_errors.setdefault(
                node_id,
                {"errors": errors, "dependent_outputs": [], "class_type": node["class_type"]},
            )
            if output not in entry["dependent_outputs"]:
                entry["dependent_outputs"].append(output)
        ok = valid and not errors
        checked[node_id] = ok
        return ok

    # ------------------------------------------------------------- execution
    def _enqueue(self, item: Item) -> None:
        heapq.heappush(self._queue, item)
        self._tasks.add(asyncio.ensure_future(self._broadcast(self._status())))
        self._tasks = {task for task in self._tasks if not task.done()}
        assert self._wake is not None
        self._wake.set()

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = heapq.heappop(self._queue)
            self._running = item
            self._interrupt = False  # reset at the start of every job
            try:
                await self._execute(item)
            except Exception:  # pragma: no cover - a bug in the fake: keep serving
                import traceback

                traceback.print_exc()
            finally:
                self._running = None
                self._current_node = None

    async def _execute(self, item: Item) -> None:
        script = self.script
        graph = item.graph
        delay = script.delay_s if item.delay_s is None else item.delay_s
        client = item.extra_data.get("client_id")
        pid = item.prompt_id
        messages: list[list] = []

        async def job(kind: str, data: dict) -> None:
            await self._send(client, kind, data)

        await self._broadcast(self._status())
        start = {"prompt_id": pid, "timestamp": _ms()}
        messages.append(["execution_start", start])
        await job("execution_start", start)
        began = time.monotonic()
        if script.on_start is not None:
            script.on_start(pid)
        order = _topological(graph, item.outputs)
        signatures = _signatures(graph, self._changed)
        # ComfyUI's default (classic) cache keeps only what this prompt can use:
        # PromptExecutor.execute sets the prompt's cache keys and calls
        # HierarchicalCache.clean_unused, dropping the outputs of every node
        # signature that is not one of this prompt's nodes.
        used = set(signatures.values())
        self._cache = {key: value for key, value in self._cache.items() if key in used}
        # Listed as execution.py lists them: every node of the prompt (also one
        # no output needs) that has a cache entry, in the prompt's key order.
        cached = [n for n in graph if signatures[n] in self._cache]
        cached_msg = {"nodes": cached, "prompt_id": pid, "timestamp": _ms()}
        messages.append(["execution_cached", cached_msg])
        await job("execution_cached", cached_msg)
        models = _models(graph, order)
        if models and models != self.loaded:
            if script.model_switch_s:
                self.model_switches += 1
                self.events.append((time.perf_counter(), "model_switch", pid))
                switched = time.monotonic() + script.model_switch_s
                await _sleep_until(switched, lambda: self._interrupt)
                began += script.model_switch_s  # the prompt's own work comes after
            if not self._interrupt:  # else the loop below reports the interruption
                self.loaded = models
        if script.foreign_noise:
            other = str(uuid.uuid4())
            await self._broadcast(
                {
                    "type": "progress",
                    "data": {"value": 1, "max": 99, "prompt_id": other, "node": "3"},
                }
            )
            await self._broadcast(
                {
                    "type": "execution_interrupted",
                    "data": {
                        "prompt_id": other,
                        "node_id": "3",
                        "node_type": "KSampler",
                        "executed": [],
                        "timestamp": _ms(),
                    },
                }
            )
        states: dict[str, dict] = {}
        outputs: dict[str, dict] = {}
        executed: list[str] = []
        has_sampler = any(graph[n]["class_type"] in SAMPLER_CLASSES for n in order)
        spent = False
        for node_id in order:
            class_type = graph[node_id]["class_type"]
            if self._interrupt:
                await self._interrupted(item, node_id, class_type, executed, messages)
                return
            if node_id in cached:
                previous = self._cache[signatures[node_id]]
                if previous is not None:
                    outputs[node_id] = previous
                    states[node_id] = _state(pid, node_id, "finished", 1, 1)
                    await job(
                        "executed",
                        {
                            "node": node_id,
                            "display_node": node_id,
                            "output": previous,
                            "prompt_id": pid,
                        },
                    )
                    await job("progress_state", {"prompt_id": pid, "nodes": dict(states)})
                continue
            self._current_node = node_id
            states[node_id] = _state(pid, node_id, "running", 0.0, 1.0)
            await job("progress_state", {"prompt_id": pid, "nodes": dict(states)})
            await job("executing", {"node": node_id, "display_node": node_id, "prompt_id": pid})
            failure = (
                (script.fail_type, script.fail_message)
                if class_type == script.fail_class
                else self._load_failure(graph, node_id)
            )
            if failure is not None:
                error = {
                    "prompt_id": pid,
                    "node_id": node_id,
                    "node_type": class_type,
                    "executed": list(executed),
                    "exception_message": failure[1] + "\n",
                    "exception_type": failure[0],
                    "traceback": ['  File "execution.py", line 496, in execute\n'],
                    "current_inputs": {},
                    "current_outputs": list(order),
                    "timestamp": _ms(),
                }
                messages.append(["execution_error", error])
                await job("execution_error", error)
                self._write_history(item, outputs, "error", messages)
                await self._finish(item)
                return
            if class_type in SAMPLER_CLASSES or (not has_sampler and not spent):
                spent = True
                steps = _steps(graph, node_id) if class_type in SAMPLER_CLASSES else 1
                for step in range(1, steps + 1):
                    # Interrupts are seen within a step, as ComfyUI sees them in the
                    # progress hook of every sampler step (real steps are short). Step
                    # ends are fixed from the prompt's start, so it takes `delay` exactly.
                    await _sleep_until(began + delay * step / steps, lambda: self._interrupt)
                    if self._interrupt:
                        await self._interrupted(item, node_id, class_type, executed, messages)
                        return
                    if class_type not in SAMPLER_CLASSES:
                        continue
                    await job(
                        "progress", {"value": step, "max": steps, "prompt_id": pid, "node": node_id}
                    )
                    if script.previews and client is not None:
                        preview = struct.pack(">II", 1, 1) + b"\xff\xd8\xff\xe0fake-jpeg"
                        await self._deliver(client, preview, "preview")
            if class_type in IMAGE_OUTPUTS:
                outputs[node_id] = {"images": self._save(graph, node_id)}
                await job(
                    "executed",
                    {
                        "node": node_id,
                        "display_node": node_id,
                        "output": outputs[node_id],
                        "prompt_id": pid,
                    },
                )
            states[node_id] = _state(pid, node_id, "finished", 1.0, 1.0)
            await job("progress_state", {"prompt_id": pid, "nodes": dict(states)})
            executed.append(node_id)
            # Cached as soon as it ran (execution.py's execute() sets
            # caches.outputs per node): an error or interrupt later in the
            # prompt keeps it cached.
            self._cache[signatures[node_id]] = outputs.get(node_id)
        success = {"prompt_id": pid, "timestamp": _ms()}
        messages.append(["execution_success", success])
        self.completed_at[pid] = time.perf_counter()
        self.events.append((self.completed_at[pid], "completion", pid))
        await job("execution_success", success)
        if script.history_lag_s:
            await asyncio.sleep(script.history_lag_s)
        self._write_history(item, outputs, "success", messages)
        await self._finish(item)

    async def _interrupted(self, item, node_id, class_type, executed, messages) -> None:
        data = {
            "prompt_id": item.prompt_id,
            "node_id": node_id,
            "node_type": class_type,
            "executed": list(executed),
            "timestamp": _ms(),
        }
        messages.append(["execution_interrupted", data])
        await self._broadcast({"type": "execution_interrupted", "data": data})
        self._write_history(item, {}, "error", messages)
        await self._finish(item)

    async def _finish(self, item: Item) -> None:
        self._running = None
        await self._broadcast(self._status())
        await self._send(
            item.extra_data.get("client_id"),
            "executing",
            {"node": None, "prompt_id": item.prompt_id},
        )

    def _write_history(self, item: Item, outputs: dict, status: str, messages: list) -> None:
        self.history[item.prompt_id] = {
            "prompt": item.as_list(),
            "outputs": outputs,
            "status": {
                "status_str": status,
                "completed": status == "success",
                "messages": messages,
            },
            "meta": {
                node: {
                    "node_id": node,
                    "display_node": node,
                    "parent_node": None,
                    "real_node_id": node,
                }
                for node in outputs
            },
        }

    def _changed(self, node: dict) -> str | None:
        """LoadImage's IS_CHANGED: the sha256 of its file, so that new bytes under
        an old name are not answered from the cache."""
        if node["class_type"] not in IMAGE_LOADERS:
            return None
        data = self.input_file(str(node["inputs"].get("image")))
        return None if data is None else _sha256(data)

    def _load_failure(self, graph: dict, node_id: str) -> tuple[str, str] | None:
        """What LoadImage raises for a file Pillow cannot open."""
        node = graph[node_id]
        if node["class_type"] not in IMAGE_LOADERS:
            return None
        from PIL import Image, UnidentifiedImageError

        value = str(node["inputs"]["image"])
        try:
            with Image.open(io.BytesIO(self.input_file(value) or b"")) as image:
                image.load()
        except UnidentifiedImageError:
            return (
                "PIL.UnidentifiedImageError",
                f"cannot identify image file '/comfyui/input/{value}'",
            )
        return None

    def _save(self, graph: dict, node_id: str) -> list[dict]:
        """SaveImage / PreviewImage: write the images, return their history entries."""
        node = graph[node_id]
        if any(graph[n]["class_type"] in IMAGE_LOADERS for n in _topological(graph, [node_id])):
            return self._save_rendered(graph, node_id)
        width, height, batch = _size(graph, node_id)
        if node["class_type"] == "SaveImage":
            kind = "output"
            subfolder, _, base = node["inputs"]["filename_prefix"].rpartition("/")
        else:
            kind, subfolder, base = "temp", "", "ComfyUI_temp_fake"
        found = []
        for index in range(batch):
            counter = self._counters.get((subfolder, base), 0) + 1
            self._counters[(subfolder, base)] = counter
            name = f"{base}_{counter:05}_.png"
            self.files[(kind, subfolder, name)] = self._png(width, height, f"{name} {index}")
            found.append({"filename": name, "subfolder": subfolder, "type": kind})
        return found

    def _save_rendered(self, graph: dict, node_id: str) -> list[dict]:
        """A graph that loads images: its pictures are made from them (Render)."""
        node = graph[node_id]
        if node["class_type"] == "SaveImage":
            kind = "output"
            subfolder, _, base = node["inputs"]["filename_prefix"].rpartition("/")
        else:
            kind, subfolder, base = "temp", "", "ComfyUI_temp_fake"
        found = []
        for picture in Render(graph, self.input_file).images(node_id):
            counter = self._counters.get((subfolder, base), 0) + 1
            self._counters[(subfolder, base)] = counter
            name = f"{base}_{counter:05}_.png"
            buffer = io.BytesIO()
            picture.save(buffer, "PNG", compress_level=1)
            self.files[(kind, subfolder, name)] = buffer.getvalue()
            found.append({"filename": name, "subfolder": subfolder, "type": kind})
        return found

    def _png(self, width: int, height: int, text: str) -> bytes:
        """A PNG of the size, unique per image: a cached noise picture with a tEXt
        chunk after IHDR (encoding a 1024x1024 PNG per image would dominate timings)."""
        base = self._pngs.get((width, height))
        if base is None:
            from PIL import Image

            noise = Image.effect_noise((width, height), 40).convert("RGB")
            buffer = io.BytesIO()
            noise.save(buffer, "PNG", compress_level=1)
            base = self._pngs[(width, height)] = buffer.getvalue()
        chunk = b"tEXt" + b"fake\x00" + text.encode()
        packed = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
        return base[:33] + packed + base[33:]  # 8-byte signature + 25-byte IHDR chunk


@dataclass
class Latent:
    image: Any  # a PIL image: the encoded picture, or None for an empty latent
    size: tuple[int, int]
    batch: int = 1
    mask: Any = None  # a PIL "L" image, white = sample here (a noise mask)


class Render:
    """What the fake "computes" for a graph that loads images, with Pillow: it
    follows the links from an output node back to the loaded files. A sampler
    starts from its latent's picture (VAEEncode), or from the first reference
    (ReferenceLatent) for an empty latent, and blends it with noise from its
    seed: half the noise at denoise 1, none at 0, only inside a noise mask. So
    the output depends on the input bytes, the seed, the denoise and the mask."""

    def __init__(self, graph: dict, files: Callable[[str], bytes | None]) -> None:
        self.graph = graph
        self.files = files
        self.memo: dict[tuple[str, int], Any] = {}

    def images(self, node_id: str) -> list[Any]:
        picture = self.input(node_id, "images")
        return [picture] * self._batch(node_id)

    def _batch(self, node_id: str) -> int:
        for source in _topological(self.graph, [node_id]):
            value = self.graph[source]["inputs"].get("batch_size")
            if isinstance(value, int):
                return value
        return 1

    def input(self, node_id: str, name: str) -> Any:
        value = self.graph[node_id]["inputs"].get(name)
        if _is_link(value):
            return self.value(value[0], int(value[1]))
        return value

    def value(self, node_id: str, slot: int = 0) -> Any:
        key = (node_id, slot)
        if key not in self.memo:
            self.memo[key] = self._compute(node_id, slot)
        return self.memo[key]

    def _compute(self, node_id: str, slot: int) -> Any:
        from PIL import Image, ImageChops, ImageOps

        cls = self.graph[node_id]["class_type"]
        get = lambda name: self.input(node_id, name)  # noqa: E731
        if cls == "LoadImage":
            with Image.open(io.BytesIO(self.files(get("image")) or b"")) as opened:
                picture = ImageOps.exif_transpose(opened)
                if slot == 0:
                    return picture.convert("RGB")
                if "A" in picture.getbands():
                    return ImageChops.invert(picture.getchannel("A"))  # 1 - alpha
                return Image.new("L", (64, 64), 0)
        if cls == "LoadImageMask":
            with Image.open(io.BytesIO(self.files(get("image")) or b"")) as opened:
                picture = ImageOps.exif_transpose(opened).convert("RGBA")
                channel = picture.getchannel(get("channel")[0].upper())
                return ImageChops.invert(channel) if get("channel") == "alpha" else channel
        if cls == "ImageScaleToTotalPixels":
            picture = get("image")
            steps = get("resolution_steps") or 1
            scale = (get("megapixels") * 1024 * 1024 / (picture.width * picture.height)) ** 0.5
            size = (
                max(steps, round(picture.width * scale / steps) * steps),
                max(steps, round(picture.height * scale / steps) * steps),
            )
            return picture.resize(size)
        if cls == "GetImageSize":
            picture = get("image")
            return (picture.width, picture.height, 1)[slot]
        if cls == "VAEEncode":
            picture = get("pixels")
            return Latent(picture, picture.size)
        if cls in ("EmptySD3LatentImage", "EmptyFlux2LatentImage", "EmptyLatentImage"):
            return Latent(None, (int(get("width")), int(get("height"))), int(get("batch_size")))
        if cls == "SetLatentNoiseMask":
            latent = get("samples")
            return Latent(latent.image, latent.size, latent.batch, get("mask"))
        if cls == "InpaintModelConditioning":
            if slot < 2:
                return get("positive" if slot == 0 else "negative")
            picture = get("pixels")
            return Latent(picture, picture.size, 1, get("mask").resize(picture.size))
        if cls == "ReferenceLatent":
            latent = get("latent")
            before = get("conditioning") or ()
            return (*before, latent.image) if latent is not None else before
        if cls in ("ConditioningZeroOut", "FluxGuidance"):
            return get("conditioning")
        if cls == "CFGGuider":
            return get("positive")
        if cls == "RandomNoise":
            return get("noise_seed")
        if cls == "KSampler":
            return self._sample(get("latent_image"), get("positive"), get("seed"), get("denoise"))
        if cls == "SamplerCustomAdvanced":
            return self._sample(get("latent_image"), get("guider"), get("noise"), 1.0)
        if cls == "VAEDecode":
            return get("samples").image
        if cls == "ImageInvert":
            return ImageChops.invert(get("image"))
        return ()  # loaders, text encoders: no pixels

    def _sample(self, latent: Latent, references: Any, seed: int, denoise: float) -> Latent:
        import random

        from PIL import Image

        start = latent.image
        if start is None:
            first = next(iter(references or ()), None)
            start = first.resize(latent.size) if first is not None else None
        if start is None:
            start = Image.new("RGB", latent.size, (128, 128, 128))
        width, height = start.size
        noise = Image.frombytes(
            "RGB", (width, height), random.Random(seed).randbytes(width * height * 3)
        )
        result = Image.blend(start, noise, 0.5 * float(denoise))
        if latent.mask is not None:
            result = Image.composite(result, start, latent.mask.resize(start.size))
        return Latent(result, start.size, latent.batch)


def _check_value(name: str, value: Any, kind: Any, options: dict, config: list) -> list[dict]:
    """ComfyUI's checks of a literal input: conversion, range, choices."""
    if isinstance(kind, list):
        if value not in kind:
            listed = repr(kind) if len(kind) <= 20 else f"(list of length {len(kind)})"
            return [
                {
                    "type": "value_not_in_list",
                    "message": "Value not in list",
                    "details": f"{name}: '{value}' not in {listed}",
                    "extra_info": {
                        "input_name": name,
                        "input_config": config,
                        "received_value": value,
                    },
                }
            ]
        return []
    convert = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(kind)
    if convert is None:
        return [
            {
                "type": "bad_linked_input",
                "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                "details": name,
                "extra_info": {"input_name": name, "input_config": config, "received_value": value},
            }
        ]
    try:
        converted = convert(value)
    except (TypeError, ValueError) as exc:
        return [
            {
                "type": "invalid_input_type",
                "message": f"Failed to convert an input value to a {kind} value",
                "details": f"{name}, {value}, {exc}",
                "extra_info": {
                    "input_name": name,
                    "input_config": config,
                    "received_value": value,
                    "exception_message": str(exc),
                },
            }
        ]
    problems = []
    if "min" in options and converted < options["min"]:
        problems.append(
            {
                "type": "value_smaller_than_min",
                "message": f"Value {converted} smaller than min of {options['min']}",
                "details": name,
                "extra_info": {"input_name": name, "input_config": config, "received_value": value},
            }
        )
    if "max" in options and converted > options["max"]:
        problems.append(
            {
                "type": "value_bigger_than_max",
                "message": f"Value {converted} bigger than max of {options['max']}",
                "details": name,
                "extra_info": {"input_name": name, "input_config": config, "received_value": value},
            }
        )
    return problems


def _error(status: int, kind: str, message: str, details: str, node_errors: dict) -> web.Response:
    body = {
        "error": {"type": kind, "message": message, "details": details, "extra_info": {}},
        "node_errors": node_errors,
    }
    return web.json_response(body, status=status)


def _is_link(value: Any) -> bool:
    """ComfyUI's is_link: a two-item list of a node id and a number."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], (int, float))
        and not isinstance(value[1], bool)
    )


def _links(node: dict) -> list[str]:
    return [value[0] for value in node.get("inputs", {}).values() if _is_link(value)]


def _topological(graph: dict, outputs: list[str]) -> list[str]:
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for source in _links(graph[node_id]):
            visit(source)
        order.append(node_id)

    for output in outputs:
        visit(output)
    return order


def _signatures(
    graph: dict, changed: Callable[[dict], str | None] = lambda _: None
) -> dict[str, str]:
    """A node's identity for the cache: its class, literal inputs, the
    identities of what it links to (as ComfyUI's cache keys do), and what its
    IS_CHANGED says (``changed``)."""
    memo: dict[str, str] = {}

    def sig(node_id: str) -> str:
        if node_id not in graph:
            # A link to a node the prompt lacks (its output was dropped with
            # node_errors): ComfyUI's signature is [NaN], equal to nothing, so
            # the node and what it feeds never match a cache entry.
            return f"missing {uuid.uuid4()}"
        if node_id not in memo:
            node = graph[node_id]
            parts = {}
            for name, value in sorted(node.get("inputs", {}).items()):
                if _is_link(value):
                    parts[name] = ["link", sig(value[0]), value[1]]
                else:
                    parts[name] = value
            memo[node_id] = json.dumps([node["class_type"], parts, changed(node)], sort_keys=True)
        return memo[node_id]

    return {node_id: sig(node_id) for node_id in graph}


def _models(graph: dict, order: list[str]) -> tuple[str, ...]:
    """The model weights a prompt loads (the files its loader nodes name)."""
    return tuple(
        sorted(
            str(graph[n]["inputs"].get(MODEL_LOADERS[graph[n]["class_type"]]))
            for n in order
            if graph[n]["class_type"] in MODEL_LOADERS
        )
    )


def _steps(graph: dict, node_id: str) -> int:
    inputs = graph[node_id]["inputs"]
    if "steps" in inputs:
        return int(inputs["steps"])
    sigmas = inputs.get("sigmas")
    if isinstance(sigmas, list):
        return int(graph[sigmas[0]]["inputs"].get("steps", 1))
    return 1


def _size(graph: dict, node_id: str) -> tuple[int, int, int]:
    """Width, height and batch of the images reaching ``node_id``."""
    seen: set[str] = set()
    todo = [node_id]
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        inputs = graph[current].get("inputs", {})
        if "width" in inputs and "height" in inputs and "batch_size" in inputs:
            return int(inputs["width"]), int(inputs["height"]), int(inputs["batch_size"])
        todo += _links(graph[current])
    return 64, 64, 1


def _state(pid: str, node_id: str, state: str, value: float, top: float) -> dict:
    return {
        "value": value,
        "max": top,
        "state": state,
        "node_id": node_id,
        "prompt_id": pid,
        "display_node_id": node_id,
        "parent_node_id": None,
        "real_node_id": node_id,
    }


async def _sleep_until(end: float, stop: Callable[[], bool]) -> None:
    while not stop():
        left = end - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.02))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ms() -> int:
    return int(time.time() * 1000)
