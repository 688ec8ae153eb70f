"""The ``fal`` backend: one imagen Request -> one request on fal's queue -> Result.

The key is read from the environment when an image is made, used for that one
request and kept nowhere else: not on the backend, not in the Result.
"""

from __future__ import annotations

import io
import math
import random
from typing import TYPE_CHECKING, Any

from imagen_core import (
    BackendError,
    Capabilities,
    Estimate,
    Result,
    Unsupported,
    require_env,
    warn,
)
from imagen_core.family_mapping import check_cfg, warn_mapping
from imagen_core.remote import (
    Pacing,
    decode_data_url,
    image_type,
    safe_input,
    short_url,
    sniff,
)
from imagen_fal.client import DASHBOARD, FalClient
from imagen_fal.families import Mapped, Route, Target, catalog
from imagen_fal.pricing import PriceTable, table
from imagen_fal.queue_run import QueueRun

if TYPE_CHECKING:
    from imagen_core import Progress, Request
    from imagen_fal.config import FalConfig

# Tests replace this to run retries and timeouts without waiting.
DEFAULT_PACING = Pacing()
# Seeds are picked below 2**31, a range every fal image model takes.
SEED_LIMIT = 2**31


class FalBackend:
    """Runs the configured endpoint on fal's queue. No ``device``: a cloud API runs
    beside local backends in ``imagen compare --parallel``."""

    def __init__(
        self,
        config: FalConfig,
        *,
        pacing: Pacing | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.config = config
        self._pacing = pacing
        self._prices = prices
        self.route: Route = catalog().route(config.model, config.family)

    def __repr__(self) -> str:
        return f"FalBackend(model={self.config.model!r}, base_url={self.config.base_url!r})"

    # ------------------------------------------------------------ declarations

    def capabilities(self) -> Capabilities:
        edit = self.route.edit
        return Capabilities(
            text_to_image=self.route.text is not None,
            images=edit.family.max_images if edit else 0,
            strength=bool(edit and edit.family.strength),
            mask=False,
        )

    def estimate(self, request: Request) -> Estimate:
        """The price of one image of ``request`` from pricing.json: no network."""
        target = self.route.target(bool(request.images))
        if target is None:
            return Estimate()
        price = (self._prices or table()).price_for(target.endpoint)
        if price is None:
            return Estimate(source=f"pricing.json lists no price for {target.endpoint}")
        usd = price.per_image(_expected_size(target, request, self._map(target, request, 1)))
        if usd is None:
            return Estimate(source=f"pricing.json: {price.reference}")
        return Estimate(usd=usd, basis="computed", source=f"pricing.json: {price.reference}")

    # ------------------------------------------------------------ generation

    def generate(self, request: Request, progress: Progress) -> Result:
        key = require_env(self.config.api_key_env, key="api_key_env")
        target = self._target(request)
        check_cfg("fal", request.extra.get("cfg"))
        # Seed 0 means "pick one": picked here and sent, so the Result reports it.
        picked = request.seed or random.SystemRandom().randrange(1, SEED_LIMIT)
        pacing = self._pacing or DEFAULT_PACING
        deadline = pacing.clock() + self.config.timeout_s
        client = FalClient(
            self.config.base_url,
            key,
            key_env=self.config.api_key_env,
            pacing=pacing,
            deadline=deadline,
        )
        run = QueueRun(
            client,
            pacing=pacing,
            deadline=deadline,
            timeout_s=self.config.timeout_s,
            progress=progress,
        )
        try:
            urls = self._image_urls(client, request, progress)
            mapped = target.family.build_input(request, picked, urls, presets=catalog().presets)
            warn_mapping(
                "fal",
                target.endpoint,
                mapped.ignored,
                mapped.adjusted,
                unknown=self.config.family is None and _unlisted(target),
                extra_key="extra",
            )
            # The block's extra fields are passed as given and win over the mapped values.
            model_input = {**mapped.input, **self.config.extra}
            output, image, mime_type, images = self._run(run, target.endpoint, model_input)
        finally:
            client.close()
        progress(1, 1, "completed")
        seed = _seed_used(output, model_input, target, picked)
        sizes = _output_sizes(images, image)
        cost, basis = self._cost(target.endpoint, sizes)
        metadata: dict[str, Any] = {
            "request_id": run.request_id,
            "endpoint": target.endpoint,
            "family": target.family.name,
            "status": run.status,
            "outputs": [short_url(str(item.get("url", ""))) for item in images],
            "inference_time_s": run.inference_time_s,
            "input": safe_input(model_input),
            "cost_basis": basis,
        }
        for name in ("has_nsfw_concepts", "description"):
            if name in output:
                metadata[name] = output[name]
        _warn_nsfw(target.endpoint, output.get("has_nsfw_concepts"))
        return Result(
            image=image,
            seed=seed,
            model=target.endpoint,
            mime_type=mime_type,
            cost_usd=cost,
            metadata=metadata,
        )

    def _target(self, request: Request) -> Target:
        target = self.route.target(bool(request.images))
        if target is not None:
            return target
        # The core checks capabilities first; this guards library callers.
        if request.images:
            raise Unsupported(
                f"fal: {self.config.model} takes no input images; use an editing endpoint "
                "such as fal-ai/flux-pro/kontext or fal-ai/nano-banana/edit"
            )
        raise Unsupported(f"fal: {self.config.model} edits images: give an input image (--image)")

    def _map(self, target: Target, request: Request, seed: int) -> Mapped:
        """The input for an estimate: the images stand in by name (never encoded)."""
        names = tuple(f"input-{i}" for i, _ in enumerate(request.images))
        return target.family.build_input(request, seed, names, presets=catalog().presets)

    def _image_urls(
        self, client: FalClient, request: Request, progress: Progress
    ) -> tuple[str, ...]:
        """Each input image as fal takes it: a data: URI up to inline_max_kb, else
        the URL of a copy uploaded to fal's storage (fal documents both for every
        file input; a large data: URI slows the request down)."""
        urls = []
        for item in request.images:
            if len(item.data) <= self.config.inline_max_kb * 1024:
                urls.append(item.data_uri())
                continue
            progress(0, 0, "uploading input images")
            name = f"imagen-input-{item.sha256[:16]}.{item.extension}"
            urls.append(
                client.upload(item.data, item.mime_type, name, storage_url=self.config.storage_url)
            )
        return tuple(urls)

    def _run(
        self, run: QueueRun, endpoint: str, model_input: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes, str, list[dict[str, Any]]]:
        start_timeout_s = max(2, math.ceil(self.config.timeout_s))
        try:
            run.start(endpoint, model_input, start_timeout_s=start_timeout_s)
        except KeyboardInterrupt:
            warn(
                "fal: interrupted before fal answered: a request may have been queued; fal "
                f"drops it if it has not started within {start_timeout_s}s, or cancel it at "
                f"{DASHBOARD}"
            )
            raise
        try:
            run.wait()
            output = run.output()
            images = _output_images(output)
            if not images:
                raise BackendError(
                    f"fal request {run.request_id} completed with no image in its output "
                    f"(keys: {', '.join(sorted(output)) or 'none'}); is `model` an image model?"
                )
            run.progress(0, 0, "downloading")
            image, mime_type = _fetch(run.client, str(images[0]["url"]), images[0])
        except BaseException as exc:
            # Ctrl-C, a canceled job, the timeout or any failure: a request left in
            # the queue would run, be paid for and never be used.
            if not run.finished:
                reason = run.cancel()
                if reason is not None:
                    warn(
                        f"fal: could not cancel request {run.request_id} ({reason}); cancel "
                        f"it at {DASHBOARD}"
                    )
                    if isinstance(exc, BackendError) and exc.transient:
                        # It may still run and be paid for: running the job again
                        # could pay twice, so the failure is final.
                        raise BackendError(str(exc)) from None
            raise
        return output, image, mime_type, images

    def _cost(self, endpoint: str, sizes: list[tuple[int, int] | None]) -> tuple[float | None, str]:
        """The cost of the outputs and how it was made (for the sidecar)."""
        price = (self._prices or table()).price_for(endpoint)
        if price is None:
            warn(
                f"fal: no price known for {endpoint}, so its cost is unknown; add it to the "
                "pricing table (docs/backends.md, section fal)",
                once=f"fal:price:{endpoint}",
            )
            return None, "no price known"
        return price.cost(sizes), price.basis(sizes)


def _output_images(output: dict[str, Any]) -> list[dict[str, Any]]:
    """The image objects of an output: ``images`` (most models) or ``image``."""
    found = output.get("images")
    if not isinstance(found, list):
        single = output.get("image")
        found = [single] if isinstance(single, dict) else []
    return [item for item in found if isinstance(item, dict) and isinstance(item.get("url"), str)]


def _fetch(client: FalClient, url: str, described: dict[str, Any]) -> tuple[bytes, str]:
    if url.startswith("data:"):  # sync_mode: true in extra
        try:
            data, declared = decode_data_url(url)
        except ValueError as exc:
            raise BackendError(f"fal's output is a broken data: URL ({exc})") from None
    else:
        data, declared = client.download(url)
    content_type = described.get("content_type")
    mime_type = image_type(
        declared if declared and declared.startswith("image/") else content_type, url, data
    )
    if mime_type is None or (sniff(data) is None and not (declared or "").startswith("image/")):
        # Neither the server nor the bytes say it is an image (a .jpg name alone does not).
        raise BackendError(
            f"fal's output {short_url(url)} is not an image (type {declared or 'not given'}); "
            "is `model` an image model?"
        )
    return data, mime_type


def _output_sizes(images: list[dict[str, Any]], first: bytes) -> list[tuple[int, int] | None]:
    """Each output image's size: as fal reports it, else (for the first, which is
    in hand) read from the image itself."""
    sizes: list[tuple[int, int] | None] = []
    for index, item in enumerate(images):
        width, height = item.get("width"), item.get("height")
        if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
            sizes.append((width, height))
        elif index == 0:
            sizes.append(_pixel_size(first))
        else:
            sizes.append(None)
    return sizes


def _pixel_size(data: bytes) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # Pillow raises many types for a broken file
        return None
    return int(width), int(height)


def _expected_size(target: Target, request: Request, mapped: Mapped) -> tuple[int, int]:
    """The size one output will have, as far as it is known before the call."""
    if mapped.pixels is not None:
        return mapped.pixels
    if target.family.size is None and request.image is not None:
        return request.image.width, request.image.height
    return request.width, request.height


def _unlisted(target: Target) -> bool:
    return target.family.name == "unknown"


def _seed_used(
    output: dict[str, Any], model_input: dict[str, Any], target: Target, picked: int
) -> int:
    """The seed fal reports, else the one sent (the block's extra may set one)."""
    for value in (output.get("seed"), model_input.get(target.family.seed or "seed")):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return picked


def _warn_nsfw(endpoint: str, flags: Any) -> None:
    if isinstance(flags, list) and flags and flags[0] is True:
        warn(
            f"fal: {endpoint}'s safety checker flagged the image, which may be blank; "
            "rephrase the prompt, or set extra: {enable_safety_checker: false} where the "
            "model allows it"
        )
