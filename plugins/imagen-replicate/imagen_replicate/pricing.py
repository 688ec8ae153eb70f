"""What an image costs on Replicate, from the pricing table shipped as data.

Replicate's prediction object has no cost field: official models are billed per
output image, community models per second of hardware time (``predict_time``).
The table (pricing.json) records each figure with the date it was taken and the
page to check it against; docs/backends.md says how to refresh it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.package_data import build_entries, check_price, read_json

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
    return parse(read_json("imagen_replicate", "pricing.json"))


def parse(data: dict[str, Any]) -> PriceTable:
    """A PriceTable from the JSON document; a malformed entry raises ValueError."""
    prices = build_entries(data["models"], _price, what="pricing.json: the price of")
    return PriceTable(taken=str(data.get("taken", "")), prices=prices)


def _price(model: str, entry: dict[str, Any]) -> Price:
    check_price(entry, ("usd_per_image", "usd_per_second"))
    per_image, per_second = entry.get("usd_per_image"), entry.get("usd_per_second")
    return Price(
        model=model,
        date=str(entry["date"]),
        source=str(entry["source"]),
        usd_per_image=None if per_image is None else float(per_image),
        usd_per_second=None if per_second is None else float(per_second),
    )
