"""The model table (models.json): what each OpenAI image model accepts and costs.

Data, not code: a new model of a known family is one line in its ``models`` list,
a new price one entry under ``prices``. A model the table does not list is a
compatible server's own name: it gets the request's size as asked and no
OpenAI-only option.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import attrs

from imagen_core.package_data import build_entries, read_json

# A model the table does not know: any size, no OpenAI-only options; edits are
# tried (a server without /images/edits answers 404, which says so).
UNKNOWN_FAMILY = "unknown"


@attrs.frozen
class CustomSize:
    """Any WxH within a rule (gpt-image-2)."""

    multiple: int
    max_side: int
    max_ratio: float
    min_pixels: int
    max_pixels: int

    def fit(self, width: int, height: int) -> tuple[int, int]:
        """The nearest size the rule allows: the aspect ratio clamped, the pixel
        count brought into the window, each side a multiple, none too long."""
        ratio = min(self.max_ratio, max(1 / self.max_ratio, width / height))
        pixels = min(self.max_pixels, max(self.min_pixels, width * height))
        w = math.sqrt(pixels * ratio)
        h = w / ratio
        scale = min(1.0, self.max_side / max(w, h))
        width, height = self._side(w * scale), self._side(h * scale)
        # Rounding to multiples may step just outside the rule: step back in.
        step = self.multiple
        while max(width, height) / min(width, height) > self.max_ratio:
            if width > height:
                width -= step
            else:
                height -= step
        while width * height > self.max_pixels or max(width, height) > self.max_side:
            width, height = (width - step, height) if width >= height else (width, height - step)
        while width * height < self.min_pixels:
            width, height = (width, height + step) if width >= height else (width + step, height)
        return width, height

    def _side(self, value: float) -> int:
        return max(self.multiple, round(value / self.multiple) * self.multiple)

    def allows(self, width: int, height: int) -> bool:
        return (
            width % self.multiple == 0
            and height % self.multiple == 0
            and max(width, height) <= self.max_side
            and max(width, height) / min(width, height) <= self.max_ratio
            and self.min_pixels <= width * height <= self.max_pixels
        )


@attrs.frozen
class Edits:
    images: int
    mask: bool


@attrs.frozen
class Family:
    name: str
    about: str
    source: str
    models: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    custom_size: CustomSize | None
    qualities: tuple[str, ...]
    gpt_options: bool
    response_format: bool
    prompt_max: int | None
    edits: Edits | None

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN_FAMILY

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """The size this family makes for a request of ``width`` x ``height``."""
        if self.custom_size is not None:
            if self.custom_size.allows(width, height):
                return width, height
            return self.custom_size.fit(width, height)
        if not self.sizes or (width, height) in self.sizes:
            return width, height
        return nearest(self.sizes, width, height)

    def size_text(self) -> str:
        """The accepted sizes in words, for a warning."""
        if self.custom_size is not None:
            rule = self.custom_size
            return (
                f"sides that are multiples of {rule.multiple}, at most {rule.max_side} px and "
                f"{rule.max_ratio:g}:1"
            )
        return ", ".join(f"{w}x{h}" for w, h in self.sizes)


def nearest(sizes: tuple[tuple[int, int], ...], width: int, height: int) -> tuple[int, int]:
    """The size nearest in aspect ratio, then in pixel count (both on a log scale:
    1920x1080 goes to 1536x1024, 600x600 to 512x512)."""
    wanted_ratio = math.log(width / height)
    wanted_pixels = math.log(width * height)
    return min(
        sizes,
        key=lambda s: (
            round(abs(math.log(s[0] / s[1]) - wanted_ratio), 6),
            abs(math.log(s[0] * s[1]) - wanted_pixels),
        ),
    )


UNKNOWN = Family(
    UNKNOWN_FAMILY, "a model the table does not list", "", (), (), None, (), False, True, None,
    Edits(images=16, mask=True),
)  # fmt: skip


@attrs.frozen
class Price:
    """What a model costs: per token (GPT image models) or per image (DALL-E)."""

    model: str
    date: str
    source: str
    usd_per_million: dict[str, float] = attrs.field(factory=dict)
    output_tokens: dict[str, dict[str, int]] = attrs.field(factory=dict)
    usd_per_image: dict[str, dict[str, float]] = attrs.field(factory=dict)

    @property
    def per_token(self) -> bool:
        return bool(self.usd_per_million)

    @property
    def cited(self) -> str:
        return f"models.json, price of {self.date}, {self.source.split(' ')[0]}"

    def token_cost(self, text_in: int, image_in: int, output: int) -> float:
        rates = self.usd_per_million
        usd = (
            text_in * rates["text_input"]
            + image_in * rates["image_input"]
            + output * rates["output"]
        ) / 1_000_000
        return round(usd, 6)


@attrs.frozen
class Catalog:
    families: dict[str, Family]
    prices: dict[str, Price]

    def family_for(self, model: str) -> Family:
        for family in self.families.values():
            if model in family.models:
                return family
        return UNKNOWN

    def price_for(self, model: str) -> Price | None:
        return self.prices.get(model)


@functools.cache
def catalog() -> Catalog:
    """The shipped models.json."""
    return parse(read_json("imagen_openai", "models.json"))


def _size(text: str) -> tuple[int, int]:
    w, sep, h = text.partition("x")
    if not sep or int(w) <= 0 or int(h) <= 0:
        raise ValueError(f"bad size {text!r}")
    return int(w), int(h)


def parse(data: dict[str, Any]) -> Catalog:
    """The table from the JSON document; a malformed entry raises ValueError naming it."""
    families = build_entries(data["families"], _family, what="models.json: family")
    prices = build_entries(data["prices"]["models"], _price, what="models.json: the price of")
    return Catalog(families, prices)


def _family(name: str, entry: dict[str, Any]) -> Family:
    custom = entry["custom_size"]
    edits = entry["edits"]
    family = Family(
        name=name,
        about=str(entry["about"]),
        source=str(entry["source"]),
        models=tuple(str(m) for m in entry["models"]),
        sizes=tuple(_size(s) for s in entry["sizes"]),
        custom_size=CustomSize(**custom) if custom else None,
        qualities=tuple(str(q) for q in entry["qualities"]),
        gpt_options=bool(entry["gpt_options"]),
        response_format=bool(entry["response_format"]),
        prompt_max=int(entry["prompt_max"]) if entry.get("prompt_max") else None,
        edits=Edits(int(edits["images"]), bool(edits["mask"])) if edits else None,
    )
    if not family.sizes and family.custom_size is None:
        raise ValueError("needs sizes or custom_size")
    if not family.source:
        raise ValueError("needs a source")
    return family


def _price(model: str, entry: dict[str, Any]) -> Price:
    if not entry.get("date") or not entry.get("source"):
        raise ValueError("needs a date and a source")
    per_million = {k: float(v) for k, v in entry.get("usd_per_million", {}).items()}
    per_image = {
        q: {s: float(v) for s, v in sizes.items()}
        for q, sizes in entry.get("usd_per_image", {}).items()
    }
    tokens = {
        q: {s: int(v) for s, v in sizes.items()}
        for q, sizes in entry.get("output_tokens", {}).items()
    }
    if bool(per_million) == bool(per_image):
        raise ValueError("needs exactly one of usd_per_million, usd_per_image")
    if per_million and set(per_million) != {"text_input", "image_input", "output"}:
        raise ValueError("usd_per_million needs text_input, image_input and output")
    amounts = list(per_million.values())
    amounts += [amount for sizes in per_image.values() for amount in sizes.values()]
    for value in amounts:
        if value < 0:
            raise ValueError(f"a negative price {value}")
    for size in [s for sizes in per_image.values() for s in sizes]:
        _size(size)
    for size in [s for sizes in tokens.values() for s in sizes]:
        _size(size)
    return Price(model, str(entry["date"]), str(entry["source"]), per_million, tokens, per_image)
