"""The mock backend: seed handling, simulated latency with progress, failure on demand."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import attrs

from imagen_core.config import setting
from imagen_core.errors import BackendError
from imagen_core.models import Estimate, Request, Result

if TYPE_CHECKING:
    from imagen_core.models import Progress

DEFAULT_STEPS = 8


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value}")


@attrs.frozen
class MockConfig:
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

    def estimate(self, request: Request) -> Estimate:
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
        from imagen_mock.picture import render_png

        image = render_png(request.prompt, seed, request.width, request.height)
        return Result(
            image=image,
            seed=seed,
            model=self.config.model,
            mime_type="image/png",
            cost_usd=self.config.cost_usd,
            metadata={"steps": steps, "renderer": "imagen_mock.picture"},
        )
