"""The mock backend: seed handling, simulated latency with progress, failure on demand,
and input images used visibly (imagen_mock.edit): it takes every kind of input."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import attrs

from imagen_core.config import setting
from imagen_core.errors import BackendError
from imagen_core.models import Capabilities, Request, Result
from imagen_core.values import value_eq, value_hash, value_repr

if TYPE_CHECKING:
    from imagen_core.models import Estimate, Progress

DEFAULT_STEPS = 8
MAX_IMAGES = 4  # the image to edit and the references together


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value}")


@attrs.frozen(repr=False, eq=False)
class MockConfig:
    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    latency_s: float = setting(
        0.0, validator=_non_negative, help="simulated work in seconds, shown as progress steps"
    )
    fail: str | None = setting(None, help="raise this error instead of generating (tests)")
    model: str = setting("mock-procedural-v1", help="model name reported in results")
    cost_usd: float = setting(
        0.0,
        validator=_non_negative,
        help="price per image to report, as a paid backend would (tests of budgets and guards)",
    )


class MockBackend:
    def __init__(self, config: MockConfig) -> None:
        self.config = config

    def capabilities(self) -> Capabilities:
        return Capabilities(text_to_image=True, images=MAX_IMAGES, strength=True, mask=True)

    def estimate(self, request: Request) -> Estimate:
        from imagen_core.models import Estimate  # built only when a price is asked

        if self.config.cost_usd == 0:
            return Estimate(usd=0.0, basis="free", source="the mock backend")
        return Estimate(usd=self.config.cost_usd, basis="computed", source="backends.*.cost_usd")

    def generate(self, request: Request, progress: Progress) -> Result:
        seed = request.seed or random.SystemRandom().randrange(1, 2**32)
        steps = request.steps or DEFAULT_STEPS
        pause = self.config.latency_s / steps
        for step in range(1, steps + 1):
            if pause:
                time.sleep(pause)
            progress(step, steps)
        if self.config.fail:
            raise BackendError(f"mock backend failed as configured: {self.config.fail}")
        metadata: dict[str, object] = {"steps": steps, "renderer": "imagen_mock.picture"}
        if request.inputs:
            image = _edited(request, seed)
            if request.image is not None:
                from imagen_mock.edit import strength_used

                metadata["strength"] = strength_used(
                    request.strength, mask=request.mask is not None
                )
        else:
            from imagen_mock.picture import render_png

            image = render_png(request.prompt, seed, request.width, request.height)
        return Result(
            image=image,
            seed=seed,
            model=self.config.model,
            mime_type="image/png",
            cost_usd=self.config.cost_usd,
            metadata=metadata,
        )


def _edited(request: Request, seed: int) -> bytes:
    """The picture with the request's inputs used (imagen_mock.edit), as PNG."""
    import io

    from imagen_mock.edit import apply_inputs
    from imagen_mock.picture import render

    picture = apply_inputs(
        render(request.prompt, seed, request.width, request.height),
        image=request.image.data if request.image else None,
        mask=request.mask.data if request.mask else None,
        references=[item.data for item in request.references],
        strength=request.strength,
    )
    buffer = io.BytesIO()
    buffer.name = "image.png"
    picture.save(buffer)
    return buffer.getvalue()
