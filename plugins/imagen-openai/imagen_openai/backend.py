"""The ``openai`` backend: one imagen Request -> one Images API call -> Result.

The key is read from the environment when an image is made, used for that one
call and kept nowhere else: not on the backend, not in the Result.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from imagen_core import BackendError, Capabilities, Estimate, Result, require_env, warn
from imagen_core.remote import decode_data_url, one_line, safe_input, sniff
from imagen_openai import inputs
from imagen_openai.catalog import Catalog, Family, catalog
from imagen_openai.client import Answer, OpenAIClient, OutOfTime
from imagen_openai.errors import Asked, failure
from imagen_openai.pacing import Pacing
from imagen_openai.plan import Plan, plan
from imagen_openai.pricing import Cost, before, from_usage

if TYPE_CHECKING:
    from imagen_core import Progress, Request
    from imagen_openai.config import OpenAIConfig

# Tests replace this to run retries and timeouts without waiting.
DEFAULT_PACING = Pacing()


class OpenAIBackend:
    """Runs the configured model on OpenAI or a compatible server. No ``device``:
    a remote API runs beside local backends in ``imagen compare --parallel``."""

    def __init__(
        self,
        config: OpenAIConfig,
        *,
        pacing: Pacing | None = None,
        models: Catalog | None = None,
    ) -> None:
        self.config = config
        self._pacing = pacing
        self._models = models

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.config.model!r}, base_url={self.config.base_url!r})"

    @property
    def family(self) -> Family:
        return (self._models or catalog()).family_for(self.config.model)

    @property
    def service(self) -> str:
        """How messages name the server: OpenAI, or the compatible server's address."""
        if self.config.is_openai:
            return "OpenAI"
        parts = urlsplit(self.config.base_url)
        host = parts.netloc.rpartition("@")[2]  # never user:password@ in a message
        return f"the server at {parts.scheme}://{host}"

    def capabilities(self) -> Capabilities:
        """Text to image always; input images and a mask through /images/edits where
        the model has it (gpt-image: 16 and a mask, dall-e-2: 1 and a mask, dall-e-3:
        none); no img2img strength (OpenAI's API has none) unless request_fields
        maps it for a compatible server."""
        images = self.config.input_images
        if images is None:
            edits = self.family.edits
            images = edits.images if edits is not None else 0
            mask = edits is not None and edits.mask
        else:
            mask = images > 0
        # A compatible server may take a strength (imagen serve does) when mapped.
        strength = images > 0 and "strength" in self.config.request_fields
        return Capabilities(text_to_image=True, images=images, strength=strength, mask=mask)

    def estimate(self, request: Request) -> Estimate:
        """The price of one image of ``request`` from the table, before the call."""
        config = self.config
        price = (self._models or catalog()).price_for(config.model)
        if price is None:
            if config.usd_per_image is not None:
                return Estimate(config.usd_per_image, "computed", "the block's usd_per_image")
            return Estimate()
        width, height = self.family.size_for(request.width, request.height)
        cost = before(
            price,
            quality=config.quality,
            size=f"{width}x{height}",
            prompt=request.prompt,
            images=len(request.images),
        )
        return Estimate(cost.usd, cost.kind, cost.source)

    def generate(self, request: Request, progress: Progress) -> Result:
        config = self.config
        key = require_env(config.api_key_env, key="api_key_env") if config.api_key_env else None
        family = self.family
        edit = bool(request.images)
        sent = plan(config, family, request, edit=edit)
        files = (
            inputs.files(request, config.model, one_square_png=family.name == "dall-e-2")
            if edit
            else None
        )
        for note in sent.notes:
            warn(f"openai: {note}", once=f"openai:{config.model}:{note}")

        pacing = self._pacing or DEFAULT_PACING
        client = OpenAIClient(
            config.base_url,
            key,
            service=self.service,
            pacing=pacing,
            deadline=pacing.clock() + config.timeout_s,
        )
        endpoint = "edits" if edit else "generations"
        asked = Asked(
            endpoint=endpoint,
            size=sent.size,
            key_sent=key is not None,
            moderation_settable=family.gpt_options and config.moderation != "low" and not edit,
        )
        progress(0, 0, "editing" if edit else "generating")
        try:
            if files is not None:
                answer = client.post(
                    "/images/edits",
                    data=inputs.form_fields(sent.body),
                    files=files,
                    doing="editing the image",
                )
            else:
                answer = client.post(
                    "/images/generations", json=sent.body, doing="making the image"
                )
            if answer.status != 200:
                raise failure(answer, client, config, asked)
            image, mime_type = self._image(client, answer)
        except KeyboardInterrupt:
            warn(
                f"openai: interrupted while {self.service} was making the image; the request "
                "was abandoned" + (" (OpenAI may still bill it)" if config.is_openai else "")
            )
            raise
        except OutOfTime:
            raise BackendError(
                f"{self.service} did not answer within timeout_s={config.timeout_s:g}s; the "
                "request was abandoned"
                + (" (OpenAI may still bill it)" if config.is_openai else "")
                + ". Raise timeout_s in the backend's block if the model needs longer"
            ) from None
        finally:
            client.close()
        progress(1, 1, "done")
        cost = self._cost(answer.body, sent, request)
        metadata = _metadata(answer, sent, cost, family)
        metadata["endpoint"] = endpoint
        seed, cost = _imagen_report(answer.body, sent.seed, cost, metadata)
        return Result(
            image=image,
            seed=seed,
            model=config.model,
            mime_type=mime_type,
            cost_usd=cost.usd,
            cost_basis=cost.kind if cost.usd is not None and cost.kind != "unknown" else None,
            metadata=metadata,
        )

    # ------------------------------------------------------------ the answer

    def _image(self, client: OpenAIClient, answer: Answer) -> tuple[bytes, str]:
        body = answer.body
        data = body.get("data") if isinstance(body, dict) else None
        first = data[0] if isinstance(data, list) and data else None
        if not isinstance(first, dict):
            raise BackendError(
                f"{self.service} answered HTTP 200 without an image (no data[0]): "
                f"{client.scrub(one_line(answer.text, 200))}; check base_url and model"
            )
        declared = None
        b64 = first.get("b64_json")
        url = first.get("url")
        if isinstance(b64, str) and b64:
            try:
                if b64.startswith("data:"):  # some servers send a data: URL here
                    image, declared = decode_data_url(b64)
                else:
                    image = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise BackendError(
                    f"{self.service} answered with b64_json that is not base64; check base_url"
                ) from None
        elif isinstance(url, str) and url:
            image, declared = client.download(url)
        else:
            raise BackendError(
                f"{self.service} answered without b64_json or url in data[0]; check base_url"
            )
        # The bytes decide: a server may call JPEG bytes png (Open WebUI assumes png).
        mime_type = sniff(image)
        if mime_type is None:
            raise BackendError(
                f"{self.service}'s answer is not an image (declared "
                f"{declared or 'nothing'}); is model an image model?"
            )
        return image, mime_type

    def _cost(self, body: Any, sent: Plan, request: Request) -> Cost:
        """The cost and how it was made (for the sidecar)."""
        config = self.config
        price = (self._models or catalog()).price_for(config.model)
        if price is None:
            if config.usd_per_image is not None:
                return Cost(
                    config.usd_per_image,
                    f"{config.usd_per_image:g} USD per image (the block's usd_per_image)",
                    "computed",
                    "the block's usd_per_image",
                )
            if config.is_openai:
                warn(
                    f"openai: no price known for {config.model}, so its cost is unknown; add it "
                    "to models.json (docs/backends.md, section OpenAI) or set usd_per_image",
                    once=f"openai:price:{config.model}",
                )
            return Cost(None, "no price known")
        usage = body.get("usage") if isinstance(body, dict) else None
        if price.per_token:
            cost = from_usage(price, usage)
            if cost is not None:
                return cost
            warn(
                f"openai: the answer for {config.model} has no usage, so its cost is estimated "
                "from the price table",
                once=f"openai:usage:{config.model}",
            )
        echoed = body.get("quality") if isinstance(body, dict) else None
        quality = echoed if isinstance(echoed, str) else config.quality
        return before(
            price,
            quality=quality,
            size=sent.size,
            prompt=request.prompt,
            images=len(request.images),
        )


def _imagen_report(body: Any, seed: int, cost: Cost, metadata: dict[str, Any]) -> tuple[int, Cost]:
    """Another imagen (``imagen serve``) reports what it did in ``data[0].imagen``:
    the seed it used (it picks one for seed 0) and its cost. Both are taken; the
    rest goes into the metadata as ``remote``."""
    first = body["data"][0] if isinstance(body, dict) else {}
    report = first.get("imagen") if isinstance(first, dict) else None
    if not isinstance(report, dict):
        return seed, cost
    metadata["remote"] = report
    used = report.get("seed")
    if isinstance(used, int) and not isinstance(used, bool) and used > 0:
        seed = used
    usd = report.get("cost_usd")
    if cost.usd is None and isinstance(usd, (int, float)) and not isinstance(usd, bool):
        cost = Cost(float(usd), "reported by the remote imagen", "billed", "the remote imagen")
        metadata["cost_basis"] = cost.basis
    return seed, cost


def _metadata(answer: Answer, sent: Plan, cost: Cost, family: Family) -> dict[str, Any]:
    body = answer.body if isinstance(answer.body, dict) else {}
    first = body.get("data", [{}])[0]
    meta: dict[str, Any] = {
        "request_id": answer.request_id,
        "family": family.name,
        "size_sent": sent.size,
        "sent": safe_input(sent.body),
    }
    for key in ("quality", "background", "output_format", "size"):
        if isinstance(body.get(key), str):
            meta[key] = body[key]
    if isinstance(first, dict) and isinstance(first.get("revised_prompt"), str):
        meta["revised_prompt"] = first["revised_prompt"]
    if isinstance(body.get("usage"), dict):
        meta["usage"] = body["usage"]
    meta["cost_basis"] = cost.basis
    return meta
