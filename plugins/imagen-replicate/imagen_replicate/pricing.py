"""What an image costs on Replicate, from the pricing table shipped as data.

Replicate's prediction object has no cost field: official models are billed per
output image, community models per second of hardware time (``predict_time``).
The table (pricing.json) records each figure with the date it was taken and the
page to check it against; docs/backends.md says how to refresh it.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from imagen_replicate.config import ModelRef


@attrs.frozen
class Price:
    model: str
    date: str
    source: str
    usd_per_image: float | None = None
    usd_per_second: float | None = None

    @property
    def per_second(self) -> bool:
        return self.usd_per_second is not None

    def cost(self, images: int, predict_time_s: float | None) -> float | None:
        """The estimate in USD; None when a per-second price has no predict_time."""
        if self.usd_per_image is not None:
            return round(self.usd_per_image * images, 6)
        if self.usd_per_second is not None and predict_time_s is not None:
            return round(self.usd_per_second * predict_time_s, 6)
        return None

    def basis(self, images: int) -> str:
        """How the estimate is made, for the sidecar."""
        if self.usd_per_second is not None:
            amount = f"{self.usd_per_second} USD per second of predict_time"
        else:
            amount = f"{self.usd_per_image} USD per image x {images}"
        return f"{amount} (price of {self.date}, {self.source})"


@attrs.frozen
class PriceTable:
    taken: str
    prices: dict[str, Price]

    def price_for(self, model: ModelRef) -> Price | None:
        """A version's own entry first (community models), else the model's."""
        return self.prices.get(str(model)) or self.prices.get(model.slug)


@functools.cache
def table() -> PriceTable:
    """The shipped pricing.json."""
    text = resources.files("imagen_replicate").joinpath("pricing.json").read_text("utf-8")
    return parse(json.loads(text))


def parse(data: dict[str, Any]) -> PriceTable:
    """A PriceTable from the JSON document; a malformed entry raises ValueError."""
    prices = {}
    for model, entry in data["models"].items():
        per_image, per_second = entry.get("usd_per_image"), entry.get("usd_per_second")
        if (per_image is None) == (per_second is None):
            raise ValueError(
                f"pricing.json: {model} needs exactly one of usd_per_image, usd_per_second"
            )
        for value in (per_image, per_second):
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"pricing.json: {model} has a bad price {value!r}")
        if not entry.get("date") or not entry.get("source"):
            raise ValueError(f"pricing.json: {model} needs a date and a source")
        prices[model] = Price(
            model=model,
            date=str(entry["date"]),
            source=str(entry["source"]),
            usd_per_image=None if per_image is None else float(per_image),
            usd_per_second=None if per_second is None else float(per_second),
        )
    return PriceTable(taken=str(data.get("taken", "")), prices=prices)
