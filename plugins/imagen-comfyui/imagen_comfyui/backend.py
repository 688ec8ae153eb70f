"""The ``comfyui`` backend: a Request becomes values for the workflow's
placeholders, the filled graph runs on the server, the first image is the Result.

Which model runs is entirely the workflow's business (data); this module knows
no model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagen_comfyui import workflows
from imagen_comfyui.placeholders import BUILTIN_TYPES, MASK, from_request, image_name, is_input
from imagen_comfyui.protocol import images
from imagen_core.errors import BackendError, Unsupported
from imagen_core.models import Result
from imagen_core.notices import warn

if TYPE_CHECKING:
    from imagen_comfyui.client import ComfyUIClient
    from imagen_comfyui.config import ComfyUIConfig
    from imagen_comfyui.protocol import Finished
    from imagen_comfyui.workflows import WorkflowCapabilities
    from imagen_core.models import Progress, Request

# ComfyUI takes seeds up to 2**64-1; imagen picks from the range every UI shows whole.
_SEED_RANGE = (1, 2**32)


def device_of(url: str) -> str:
    """``host:port`` of a server URL: two backends on one server share its GPU."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def fit(size: int, multiple: int) -> int:
    """``size`` rounded to the nearest multiple of ``multiple`` (at least one multiple)."""
    return max(multiple, (size + multiple // 2) // multiple * multiple)


class ComfyUIBackend:
    """Runs one workflow template on one ComfyUI server."""

    # imagen worker keeps two prompts submitted: ComfyUI's own queue then holds
    # the next one while the current one renders, so the GPU never waits for
    # our download, write and sinks.
    max_in_flight = 2

    def __init__(self, config: ComfyUIConfig) -> None:
        self.config = config
        self.workflow = workflows.load(config.workflow, output_node=config.output_node)
        self.url = config.url.rstrip("/")
        self.device = device_of(self.url)
        self._client: ComfyUIClient | None = None
        # A placeholder of the workflow's own that nothing fills fails now, not
        # after the first prompt: its value can only come from vars or the data.
        # The inputs' placeholders are filled per request, with the uploads.
        self.workflow.check_filled(
            set(BUILTIN_TYPES)
            | {name for name in self.workflow.names if is_input(name)}
            | set(config.vars)
            | set(self.workflow.meta.defaults)
        )

    def capabilities(self) -> WorkflowCapabilities:
        """Exactly the inputs the workflow has placeholders for; the core checks
        every request against this before calling generate."""
        return self.workflow.capabilities()

    def fingerprint(self) -> dict[str, Any]:
        """What decides the pixels on this server: its ComfyUI and PyTorch
        versions and device, the workflow's hash and the model files it loads."""
        import hashlib
        import json

        stats = self.client.system_stats()
        system: Any = stats.get("system")
        system = system if isinstance(system, dict) else {}
        devices: Any = stats.get("devices")
        device = devices[0] if isinstance(devices, list) and devices else {}
        device = device if isinstance(device, dict) else {}
        graph = json.dumps(self.workflow.graph, sort_keys=True, separators=(",", ":"))
        return {
            "comfyui": system.get("comfyui_version"),
            "pytorch": system.get("pytorch_version"),
            "device": device.get("name"),
            "workflow_sha256": hashlib.sha256(graph.encode()).hexdigest(),
            "models": _model_files(self.workflow.graph),
        }

    @property
    def usd_per_second(self) -> float | None:
        """The GPU's price per second (``gpu_usd_per_hour``): the core prices each
        image by its execution time with it (cost basis ``estimated``)."""
        rate = self.config.gpu_usd_per_hour
        return None if rate is None else rate / 3600

    @property
    def client(self) -> ComfyUIClient:
        if self._client is None:
            from imagen_comfyui.client import ComfyUIClient

            self._client = ComfyUIClient(self.url)
        return self._client

    def values(self, request: Request, seed: int) -> dict[str, Any]:
        """Every placeholder value for ``request``, lowest precedence first: the
        workflow's data, ``vars``, ``defaults``, then the request itself."""
        workflow = self.workflow
        names = set(workflow.names)
        values: dict[str, Any] = dict(workflow.meta.defaults)
        values.update(self.config.vars)
        values.update(self.config.defaults.values())
        # Library callers may pass any placeholder in Request.extra (e.g. cfg).
        values.update({k: v for k, v in request.extra.items() if not from_request(k)})
        if request.strength is not None:
            values["denoise"] = request.strength  # --strength: how far from the input image
        values["prompt"] = request.prompt
        values["seed"] = seed
        if request.negative or "negative" not in values:
            values["negative"] = request.negative
        if request.steps:
            values["steps"] = request.steps
        multiple = self.config.defaults.size_multiple or workflow.meta.size_multiple
        width, height = fit(request.width, multiple), fit(request.height, multiple)
        if (width, height) != (request.width, request.height) and "width" in names:
            size = f"{request.width}x{request.height}"
            warn(
                f"comfyui: {workflow.name} needs sizes in multiples of {multiple}: "
                f"{size} becomes {width}x{height}",
                once=f"comfyui-size:{workflow.name}:{size}",
            )
        values["width"], values["height"] = width, height
        self._warn_ignored(request, names)
        return values

    def _warn_ignored(self, request: Request, names: set[str]) -> None:
        name = self.workflow.name
        for asked, placeholder, flag in (
            (request.negative, "negative", "--negative"),
            (request.steps, "steps", "--steps"),
            (request.seed, "seed", "--seed"),
        ):
            if asked and placeholder not in names:
                warn(
                    f"comfyui: workflow {name} has no ${{{placeholder}}}; {flag} is ignored",
                    once=f"comfyui-ignored:{name}:{placeholder}",
                )

    def uploads(self, request: Request) -> dict[str, str]:
        """Upload the request's inputs; the value of each input placeholder."""
        client = self.client
        filled = {image_name(i): client.upload(item) for i, item in enumerate(request.images, 1)}
        if request.mask is not None:
            filled[MASK] = client.upload(request.mask)
        return filled

    def _run(self, request: Request, values: dict[str, Any], progress: Progress) -> Finished:
        """Upload the inputs, fill the graph and run it. When ComfyUI has lost an
        input uploaded earlier (its input folder was cleaned), upload it again
        and run once more."""
        from imagen_comfyui.client import UploadGone

        workflow, client = self.workflow, self.client
        if request.inputs:
            progress(0, 0, "uploading inputs")
        for attempt in (1, 2):
            values.update(self.uploads(request))
            graph = workflow.substitute(values)
            try:
                return client.run(
                    graph,
                    progress,
                    timeout_s=self.config.timeout_s,
                    label=f"workflow {workflow.name}",
                    files=workflow.meta.files,
                )
            except UploadGone:
                if attempt == 2:
                    raise
                client.forget(request.inputs)
        raise AssertionError("unreachable")  # pragma: no cover

    def generate(self, request: Request, progress: Progress) -> Result:
        workflow = self.workflow
        names = workflow.names
        # The core refuses such a request before calling; a library caller that
        # calls the backend itself gets the same answer.
        lacking = workflow.capabilities().lacks(request)
        if lacking is not None:
            raise Unsupported(f"comfyui: cannot take {lacking}")
        # Seed 0 means "pick one": picked here, so the Result reports the seed used,
        # and a new seed per run keeps ComfyUI from answering from its cache.
        if "seed" in names:
            import random

            seed = request.seed or random.SystemRandom().randrange(*_SEED_RANGE)
        else:
            # The workflow fixes its own seed: report that one, it is what was used.
            fixed = workflow.literal("seed", "noise_seed")
            seed = fixed if isinstance(fixed, int) and not isinstance(fixed, bool) else request.seed
        values = self.values(request, seed)
        client = self.client
        finished = self._run(request, values, progress)
        found = images(finished.outputs, workflow.output_nodes)
        if self.config.output_node is not None:
            found = [ref for ref in found if ref.node == self.config.output_node]
        if not found:
            where = f"node {self.config.output_node}" if self.config.output_node else "the workflow"
            raise BackendError(
                f"ComfyUI finished workflow {workflow.name} but {where} saved no image "
                f"(prompt {finished.prompt_id})"
            )
        first = found[0]
        cached = first.node in finished.cached
        image, mime_type = client.fetch(first, cached=cached)
        steps = values["steps"] if "steps" in names else workflow.literal("steps")
        settings = {
            name: values[name] for name in names if name not in ("prompt", "negative", "seed")
        }
        view = f"{client.shown}/view"
        return Result(
            image=image,
            seed=seed,
            model=workflow.model,
            mime_type=mime_type,
            cost_usd=None if self.usd_per_second else 0.0,
            metadata={
                "fingerprint": self.fingerprint(),
                "execution_s": finished.execution_s,
                "workflow": workflow.name,
                "workflow_source": workflow.source,
                "steps": steps,
                "settings": settings,
                "server": client.shown,
                "prompt_id": finished.prompt_id,
                "cached": cached,
                "images": [
                    {
                        "node": ref.node,
                        "filename": ref.filename,
                        "subfolder": ref.subfolder,
                        "type": ref.type,
                        "url": f"{view}?{_query(ref.query())}",
                    }
                    for ref in found
                ],
            },
        )


_MODEL_INPUTS = (
    "ckpt_name",
    "unet_name",
    "clip_name",
    "clip_name1",
    "clip_name2",
    "vae_name",
    "lora_name",
    "model_name",
    "control_net_name",
)


def _model_files(graph: dict[str, Any]) -> list[str]:
    """The model files a graph loads (its loaders' file-name inputs)."""
    names = set()
    for node in graph.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        for key in _MODEL_INPUTS:
            value = inputs.get(key) if isinstance(inputs, dict) else None
            if isinstance(value, str) and "${" not in value:
                names.add(value)
    return sorted(names)


def _query(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)
