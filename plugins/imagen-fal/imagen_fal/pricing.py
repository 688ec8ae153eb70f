"""What an image costs on fal, from the pricing table shipped as data.

fal's queue API reports no cost. Image endpoints are billed per output image or
per megapixel of output (docs.fal.ai, Pricing); the table (pricing.json) records
each figure with the date it was taken and the page to check it against, and
docs/backends.md says how to refresh it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import attrs

from imagen_core.package_data import build_entries, check_price, read_json

# fal counts a megapixel as 1024x1024 pixels: 1024x1024 costs one unit.
MEGAPIXEL = 1024 * 1024


def megapixels(width: int, height: int) -> int:
    """Billed megapixels of one output: whole units, rounded up (1024x768 = 1)."""
    return max(1, math.ceil(width * height / MEGAPIXEL))


@attrs.frozen
class Price:
    endpoint: str
    date: str
    source: str
    usd_per_image: float | None = None
    usd_per_megapixel: float | None = None

    @property
    def per_megapixel(self) -> bool:
        return self.usd_per_megapixel is not None

    def per_image(self, size: tuple[int, int] | None) -> float | None:
        """The price of one output image of ``size``; None when priced per megapixel
        and the size is unknown."""
        if self.usd_per_image is not None:
            return self.usd_per_image
        if self.usd_per_megapixel is not None and size is not None:
            return round(self.usd_per_megapixel * megapixels(*size), 6)
        return None

    def cost(self, sizes: list[tuple[int, int] | None]) -> float | None:
        """What the outputs of these sizes cost; None when any size is needed but unknown."""
        each = [self.per_image(size) for size in sizes]
        if any(price is None for price in each):
            return None
        return round(sum(price for price in each if price is not None), 6)

    def basis(self, sizes: list[tuple[int, int] | None]) -> str:
        """How the figure is made, for the sidecar."""
        if self.usd_per_megapixel is not None:
            units = [megapixels(*s) for s in sizes if s is not None]
            amount = f"{self.usd_per_megapixel} USD per megapixel x {sum(units)} MP"
        else:
            amount = f"{self.usd_per_image} USD per image x {len(sizes)}"
        return f"{amount} ({self.reference})"

    @property
    def reference(self) -> str:
        return f"price of {self.date}, {self.source}"


@attrs.frozen
class PriceTable:
    taken: str
    prices: dict[str, Price]

    def price_for(self, endpoint: str) -> Price | None:
        return self.prices.get(endpoint)


@functools.cache
def table() -> PriceTable:
    """The shipped pricing.json."""
    return parse(read_json("imagen_fal", "pricing.json"))


def parse(data: dict[str, Any]) -> PriceTable:
    """A PriceTable from the JSON document; a malformed entry raises ValueError."""
    prices = build_entries(data["endpoints"], _price, what="pricing.json: the price of")
    return PriceTable(taken=str(data.get("taken", "")), prices=prices)


def _price(endpoint: str, entry: dict[str, Any]) -> Price:
    check_price(entry, ("usd_per_image", "usd_per_megapixel"))
    per_image, per_mp = entry.get("usd_per_image"), entry.get("usd_per_megapixel")
    return Price(
        endpoint=endpoint,
        date=str(entry["date"]),
        source=str(entry["source"]),
        usd_per_image=None if per_image is None else float(per_image),
        usd_per_megapixel=None if per_mp is None else float(per_mp),
    )
