"""Model families: how an imagen Request becomes a Replicate model's input.

The mapping is data (families.json, shipped inside the package), so supporting
another model of a known family is a line of JSON, never Python. A model no family
lists gets only ``prompt`` and ``seed``; the block's ``input`` adds the rest.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.family_mapping import put_options
from imagen_core.models import Capabilities
from imagen_core.package_data import build_entries, read_json

if TYPE_CHECKING:
    from collections.abc import Mapping

    from imagen_core import Request


@attrs.frozen
class Choice:
    """An enumerated input (``aspect_ratio``, ``megapixels``) and its allowed values;
    for aspect ratios, the pixels each makes at 1 megapixel when the model says."""

    input: str
    choices: tuple[str, ...]
    sizes: dict[str, tuple[int, int]] = attrs.field(factory=dict)


@attrs.frozen
class Dimensions:
    """``width``/``height`` inputs: rounded to ``multiple`` and kept within [min, max]."""

    width: str
    height: str
    multiple: int
    min: int
    max: int

    def fit(self, side: int) -> int:
        rounded = round(side / self.multiple) * self.multiple
        low = math.ceil(self.min / self.multiple) * self.multiple
        high = self.max // self.multiple * self.multiple
        return max(low, min(high, rounded))


@attrs.frozen
class SizeRule:
    aspect_ratio: Choice | None = None
    megapixels: Choice | None = None
    custom: str | None = None  # the aspect_ratio value that switches to width/height
    width_height: Dimensions | None = None


@attrs.frozen
class Inputs:
    """Which of the model's inputs take imagen's input images."""

    image: str | None  # takes the first image as one URI
    images: str | None  # takes every image (the first, then references) as a list
    max_images: int
    strength: str | None  # --strength (prompt_strength)
    mask: str | None
    requires_image: bool  # no text to image
    # Sent instead of the size inputs when an image is given (aspect_ratio
    # match_input_image); None keeps the size mapping.
    with_image: dict[str, Any] | None
    source: str

    def capabilities(self) -> Capabilities:
        return Capabilities(
            text_to_image=not self.requires_image,
            images=self.max_images,
            strength=self.strength is not None,
            mask=self.mask is not None,
        )


@attrs.frozen
class Mapped:
    """The input built for a request, and what could not be honoured as asked."""

    input: dict[str, Any]
    ignored: list[str] = attrs.field(factory=list)  # "--negative", "steps", "cfg"
    adjusted: str | None = None  # how the size was changed, for a warning


@attrs.frozen
class Family:
    name: str
    about: str
    source: str
    models: tuple[str, ...]
    size: SizeRule | None
    steps: str | None
    cfg: str | None
    negative: str | None
    inputs: Inputs | None = None

    def capabilities(self) -> Capabilities:
        """What models of this family take: text only unless ``inputs`` says more."""
        return self.inputs.capabilities() if self.inputs else Capabilities()

    def build_input(
        self, request: Request, seed: int, files: Mapping[str, str] | None = None
    ) -> Mapped:
        """Replicate input for ``request`` with ``seed`` (never 0: picked by the caller).
        ``files`` gives each input image's URI (a data: URI or an uploaded file's
        URL) by its sha256."""
        sent: dict[str, Any] = {"prompt": request.prompt, "seed": seed}
        ignored: list[str] = []
        inputs = self.inputs
        if request.images and inputs is not None and inputs.with_image is not None:
            sent.update(inputs.with_image)  # the size follows the input image
            adjusted = None
        else:
            adjusted = self._size(request.width, request.height, sent)
        if inputs is not None:
            uris = files or {}
            if request.images:
                if inputs.image:
                    sent[inputs.image] = uris[request.images[0].sha256]
                if inputs.images:
                    sent[inputs.images] = [uris[item.sha256] for item in request.images]
            if request.mask is not None and inputs.mask:
                sent[inputs.mask] = uris[request.mask.sha256]
            if request.strength is not None and inputs.strength:
                sent[inputs.strength] = request.strength
        fields = {"steps": self.steps, "cfg": self.cfg, "negative": self.negative}
        put_options(request, fields, sent, ignored)
        return Mapped(sent, ignored, adjusted)

    def _size(self, width: int, height: int, sent: dict[str, Any]) -> str | None:
        """Put the request's size into ``sent``; how it was changed, if it was."""
        rule = self.size
        if rule is None:
            return None
        if rule.aspect_ratio is not None:
            return _aspect_ratio(rule, rule.aspect_ratio, width, height, sent)
        if rule.width_height is not None:
            return _dimensions(rule.width_height, width, height, sent)
        return None


def _aspect_ratio(
    rule: SizeRule, ratios: Choice, width: int, height: int, sent: dict[str, Any]
) -> str | None:
    megapixels = rule.megapixels.choices if rule.megapixels else ()
    exact = _exact(ratios, megapixels, width, height)
    if exact is None and rule.custom is not None and rule.width_height is not None:
        sent[ratios.input] = rule.custom
        return _dimensions(rule.width_height, width, height, sent)
    ratio, mp = exact or (
        _nearest_ratio(ratios.choices, width, height),
        _nearest_megapixels(megapixels, width * height),
    )
    sent[ratios.input] = ratio
    if rule.megapixels is not None:
        sent[rule.megapixels.input] = mp
    if exact is not None:
        return None
    said = f"aspect_ratio {ratio}" + (f" and megapixels {mp}" if mp is not None else "")
    made = _made(ratios, ratio, mp)
    if made is not None:
        return f"{width}x{height} is sent as {said}: this model makes {made[0]}x{made[1]}"
    return f"{width}x{height} is sent as {said}, the nearest this model takes"


def _exact(
    ratios: Choice, megapixels: tuple[str, ...], width: int, height: int
) -> tuple[str, str | None] | None:
    """The ratio (and megapixels) that make exactly ``width`` x ``height``: one of the
    model's own sizes when it lists them (FLUX's 16:9 is 1344x768, not quite 16:9),
    else any size of exactly a ratio it takes."""
    if ratios.sizes:
        for ratio in ratios.choices:
            for mp in megapixels or (None,):
                if _made(ratios, ratio, mp) == (width, height):
                    return ratio, mp
        return None
    for ratio in ratios.choices:
        if _is_ratio(ratio, width, height):
            return ratio, _nearest_megapixels(megapixels, width * height)
    return None


def _made(ratios: Choice, ratio: str, megapixels: str | None) -> tuple[int, int] | None:
    """The pixels the model makes for a ratio and megapixels value, when known."""
    size = ratios.sizes.get(ratio)
    if size is None:
        return None
    scale = math.sqrt(float(megapixels)) if megapixels is not None else 1.0
    return round(size[0] * scale), round(size[1] * scale)


def _ratio(choice: str) -> tuple[int, int]:
    a, _, b = choice.partition(":")
    return int(a), int(b)


def _is_ratio(choice: str, width: int, height: int) -> bool:
    a, b = _ratio(choice)
    return a * height == b * width


def _nearest_ratio(choices: tuple[str, ...], width: int, height: int) -> str:
    wanted = math.log(width / height)
    return min(choices, key=lambda c: abs(math.log(_ratio(c)[0] / _ratio(c)[1]) - wanted))


def _nearest_megapixels(choices: tuple[str, ...], pixels: int) -> str | None:
    # Compared on a log scale: 512x512 (0.26 MP) is nearer "0.25" than "1".
    if not choices:
        return None
    wanted = math.log(pixels / 1_000_000)
    return min(choices, key=lambda c: abs(math.log(float(c)) - wanted))


def _dimensions(rule: Dimensions, width: int, height: int, sent: dict[str, Any]) -> str | None:
    fitted = rule.fit(width), rule.fit(height)
    sent[rule.width] = fitted[0]
    sent[rule.height] = fitted[1]
    if fitted == (width, height):
        return None
    return (
        f"{width}x{height} is sent as {fitted[0]}x{fitted[1]} (multiples of {rule.multiple}, "
        f"{rule.min}-{rule.max} per side)"
    )


# Used for a model no family lists: prompt and seed are inputs of every image model.
UNKNOWN = Family("unknown", "a model no family lists", "", (), None, None, None, None)


def family_for(model_slug: str, override: str | None = None) -> Family:
    """The family named by the block's ``family`` key, else the one listing the model."""
    families = catalog()
    if override is not None:
        return families[override]
    for family in families.values():
        if model_slug in family.models:
            return family
    return UNKNOWN


@functools.cache
def catalog() -> dict[str, Family]:
    """Every family in the shipped families.json, by name."""
    return parse(read_json("imagen_replicate", "families.json"))


def parse(data: dict[str, Any]) -> dict[str, Family]:
    """Families from the JSON document; a malformed entry raises ValueError naming it."""
    return build_entries(data["families"], _family, what="families.json: family")


def _family(name: str, entry: dict[str, Any]) -> Family:
    size = entry["size"]
    rule = None
    if size is not None:
        ar, mp, wh = size.get("aspect_ratio"), size.get("megapixels"), size.get("width_height")
        rule = SizeRule(
            aspect_ratio=Choice(
                ar["input"],
                tuple(ar["choices"]),
                {k: (int(v[0]), int(v[1])) for k, v in ar.get("sizes", {}).items()},
            )
            if ar
            else None,
            megapixels=Choice(mp["input"], tuple(mp["choices"])) if mp else None,
            custom=size["custom"]["value"] if size.get("custom") else None,
            width_height=Dimensions(**wh) if wh else None,
        )
        for choice in rule.aspect_ratio.choices if rule.aspect_ratio else ():
            if min(_ratio(choice)) <= 0:
                raise ValueError(f"bad aspect ratio {choice!r}")
        if rule.aspect_ratio and set(rule.aspect_ratio.sizes) - set(rule.aspect_ratio.choices):
            raise ValueError("sizes names a ratio that is not among the choices")
        for choice in rule.megapixels.choices if rule.megapixels else ():
            if float(choice) <= 0:
                raise ValueError(f"bad megapixels {choice!r}")
        if rule.custom is not None and rule.width_height is None:
            raise ValueError("'custom' needs 'width_height'")
    return Family(
        name=name,
        about=str(entry["about"]),
        source=str(entry["source"]),
        models=tuple(entry["models"]),
        size=rule,
        steps=entry["steps"],
        cfg=entry["cfg"],
        negative=entry["negative"],
        inputs=_inputs(entry["inputs"]) if entry.get("inputs") else None,
    )


def _inputs(entry: dict[str, Any]) -> Inputs:
    inputs = Inputs(
        image=entry["image"],
        images=entry["images"],
        max_images=int(entry["max_images"]),
        strength=entry["strength"],
        mask=entry["mask"],
        requires_image=bool(entry["requires_image"]),
        with_image=dict(entry["with_image"]) if entry["with_image"] is not None else None,
        source=str(entry["source"]),
    )
    if not (inputs.image or inputs.images) or inputs.max_images < 1:
        raise ValueError("inputs needs 'image' or 'images' and max_images of 1 or more")
    if inputs.image and not inputs.images and inputs.max_images != 1:
        raise ValueError("a single 'image' input takes max_images 1")
    return inputs
