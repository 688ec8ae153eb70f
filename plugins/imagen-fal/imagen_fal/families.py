"""Model families: how an imagen Request becomes a fal endpoint's input, and which
endpoint of a model a request goes to.

The mapping is data (families.json, shipped inside the package), so supporting
another endpoint of a known family is a line of JSON, never Python. An endpoint
no family lists gets only ``prompt`` and ``seed``; the block's ``extra`` adds the rest.

fal gives text-to-image and editing separate endpoints (``fal-ai/nano-banana`` and
``fal-ai/nano-banana/edit``). A configured model names one of them, or a pair
(``fal-ai/bytedance/seedream/v4``); a request with input images goes to the
editing endpoint, one without to the text-to-image endpoint.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core.family_mapping import put_options
from imagen_core.package_data import build_entries, read_json

if TYPE_CHECKING:
    from imagen_core import Request


@attrs.frozen
class SizeRule:
    """``image_size`` (a preset name, or a {width, height} object) or ``aspect_ratio``
    (one of ``ratios``); for image_size, the total pixels fal accepts, when it says."""

    image_size: bool = False
    ratios: tuple[str, ...] = ()
    min_pixels: int | None = None
    max_pixels: int | None = None


@attrs.frozen
class ImagesRule:
    """The input that takes the request's images: one URL (``image_url``) or a list
    (``image_urls``) of at most ``max``."""

    input: str
    max: int
    list: bool = False


@attrs.frozen
class Mapped:
    """The input built for a request, and what could not be honoured as asked."""

    input: dict[str, Any]
    ignored: list[str] = attrs.field(factory=list)  # "steps", "cfg", "negative prompt"
    adjusted: str | None = None  # how the size was changed, for a warning
    pixels: tuple[int, int] | None = None  # the size the input asks for, when known


@attrs.frozen
class Family:
    name: str
    about: str
    source: str
    size: SizeRule | None
    steps: str | None
    guidance: str | None
    negative: str | None
    seed: str | None
    images: ImagesRule | None = None
    strength: str | None = None
    text_to_image: bool = True

    def build_input(
        self,
        request: Request,
        seed: int,
        image_urls: tuple[str, ...] = (),
        *,
        presets: dict[str, tuple[int, int]] | None = None,
    ) -> Mapped:
        """fal input for ``request`` with ``seed`` (never 0: picked by the caller) and
        the request's images as URLs (data: URIs or fal storage URLs)."""
        sent: dict[str, Any] = {"prompt": request.prompt}
        if self.seed:
            sent[self.seed] = seed
        ignored: list[str] = []
        adjusted, pixels = self._size(request.width, request.height, sent, presets or {})
        fields = {
            "steps": self.steps,
            "cfg": self.guidance,
            "negative": self.negative,
            "strength": self.strength,
        }
        put_options(request, fields, sent, ignored)
        if image_urls and self.images is not None:
            if self.images.list:
                sent[self.images.input] = list(image_urls)
            else:
                sent[self.images.input] = image_urls[0]
        return Mapped(sent, ignored, adjusted, pixels)

    def _size(
        self, width: int, height: int, sent: dict[str, Any], presets: dict[str, tuple[int, int]]
    ) -> tuple[str | None, tuple[int, int] | None]:
        """Put the request's size into ``sent``: how it was changed, and the pixels asked."""
        rule = self.size
        if rule is None:
            return None, None
        if rule.image_size:
            return _image_size(rule, width, height, sent, presets)
        if rule.ratios:
            ratio = next((r for r in rule.ratios if _is_ratio(r, width, height)), None)
            sent["aspect_ratio"] = ratio or _nearest_ratio(rule.ratios, width, height)
            if ratio is None:
                return (
                    f"{width}x{height} is sent as aspect_ratio {sent['aspect_ratio']}, "
                    "the nearest this model takes",
                    None,
                )
        return None, None

    @property
    def max_images(self) -> int:
        return self.images.max if self.images else 0


def _image_size(
    rule: SizeRule,
    width: int,
    height: int,
    sent: dict[str, Any],
    presets: dict[str, tuple[int, int]],
) -> tuple[str | None, tuple[int, int]]:
    """A preset name when one makes exactly this size, else {width, height}, scaled
    into the pixel range fal accepts for the model."""
    for name, size in presets.items():
        if size == (width, height):
            sent["image_size"] = name
            return None, size
    fitted = (width, height)
    pixels = width * height
    bound = (
        rule.min_pixels
        if rule.min_pixels and pixels < rule.min_pixels
        else rule.max_pixels
        if rule.max_pixels and pixels > rule.max_pixels
        else None
    )
    if bound is not None:
        scale = math.sqrt(bound / pixels)
        rounding = math.ceil if bound == rule.min_pixels else math.floor
        fitted = (int(rounding(width * scale)), int(rounding(height * scale)))
    sent["image_size"] = {"width": fitted[0], "height": fitted[1]}
    if fitted == (width, height):
        return None, fitted
    return (
        f"{width}x{height} is sent as {fitted[0]}x{fitted[1]} "
        f"({rule.min_pixels}-{rule.max_pixels} pixels in all)"
    ), fitted


def _ratio(choice: str) -> tuple[int, int]:
    a, _, b = choice.partition(":")
    return int(a), int(b)


def _is_ratio(choice: str, width: int, height: int) -> bool:
    a, b = _ratio(choice)
    return a * height == b * width


def _nearest_ratio(choices: tuple[str, ...], width: int, height: int) -> str:
    wanted = math.log(width / height)
    return min(choices, key=lambda c: abs(math.log(_ratio(c)[0] / _ratio(c)[1]) - wanted))


# Used for an endpoint no family lists: every fal image model takes a prompt, and
# nearly every one a seed (an unknown input is ignored by fal's pydantic models).
UNKNOWN = Family("unknown", "an endpoint no family lists", "", None, None, None, None, "seed")


@attrs.frozen
class Endpoint:
    """A listed endpoint id: its family (None for an id that only names a pair) and
    its siblings for text-to-image and editing."""

    id: str
    family: str | None
    text: str | None = None
    edit: str | None = None


@attrs.frozen
class Target:
    """Where one kind of request goes: an endpoint id and the family of its input."""

    endpoint: str
    family: Family


@attrs.frozen
class Route:
    """The endpoints a configured model uses: for requests without input images
    (``text``) and with them (``edit``); None when the model cannot take those."""

    model: str
    text: Target | None
    edit: Target | None

    def target(self, with_images: bool) -> Target | None:
        return self.edit if with_images else self.text

    @property
    def families(self) -> list[Family]:
        return [t.family for t in (self.text, self.edit) if t is not None]


@attrs.frozen
class Catalog:
    families: dict[str, Family]
    endpoints: dict[str, Endpoint]
    presets: dict[str, tuple[int, int]]

    def route(self, model: str, family: str | None = None) -> Route:
        """The endpoints for ``model``; ``family`` (the block's key) maps the model
        itself with that family, whatever the tables say."""
        if family is not None:
            return self._alone(model, self.families[family])
        entry = self.endpoints.get(model)
        if entry is None:
            return self._alone(model, UNKNOWN)
        own = Target(model, self.families[entry.family]) if entry.family else None
        text = own if own and own.family.text_to_image else self._target(entry.text)
        edit = own if own and own.family.images else self._target(entry.edit)
        return Route(model, text, edit)

    def _alone(self, model: str, family: Family) -> Route:
        target = Target(model, family)
        return Route(
            model, target if family.text_to_image else None, target if family.images else None
        )

    def _target(self, endpoint: str | None) -> Target | None:
        if endpoint is None:
            return None
        family = self.endpoints[endpoint].family
        return Target(endpoint, self.families[family]) if family else None


@functools.cache
def catalog() -> Catalog:
    """Every family and endpoint in the shipped families.json."""
    return parse(read_json("imagen_fal", "families.json"))


def parse(data: dict[str, Any]) -> Catalog:
    """A Catalog from the JSON document; a malformed entry raises ValueError naming it."""
    families = build_entries(data["families"], _family, what="families.json: family")
    endpoints = {}
    for endpoint, entry in data["endpoints"].items():
        listed = Endpoint(endpoint, entry.get("family"), entry.get("text"), entry.get("edit"))
        if listed.family is not None and listed.family not in families:
            raise ValueError(f"families.json: {endpoint} names no known family {listed.family!r}")
        endpoints[endpoint] = listed
    for listed in endpoints.values():
        for sibling in (listed.text, listed.edit):
            if sibling is not None and endpoints.get(sibling, Endpoint("", None)).family is None:
                raise ValueError(f"families.json: {listed.id} names {sibling}, which has no family")
    presets = {name: (int(size[0]), int(size[1])) for name, size in data["presets"].items()}
    return Catalog(families, endpoints, presets)


def _family(name: str, entry: dict[str, Any]) -> Family:
    size = entry["size"]
    rule = None
    if size is not None:
        rule = SizeRule(
            image_size=bool(size.get("image_size", False)),
            ratios=tuple(size.get("aspect_ratio", ())),
            min_pixels=size.get("min_pixels"),
            max_pixels=size.get("max_pixels"),
        )
        for choice in rule.ratios:
            if min(_ratio(choice)) <= 0:
                raise ValueError(f"bad aspect ratio {choice!r}")
        if rule.image_size == bool(rule.ratios):
            raise ValueError("size needs exactly one of image_size and aspect_ratio")
    images = entry.get("images")
    text_to_image = bool(entry.get("text_to_image", True))
    if images is None and not text_to_image:
        raise ValueError("a family that needs an input image must say where images go")
    return Family(
        name=name,
        about=str(entry["about"]),
        source=str(entry["source"]),
        size=rule,
        steps=entry["steps"],
        guidance=entry["guidance"],
        negative=entry["negative"],
        seed=entry["seed"],
        images=ImagesRule(images["input"], int(images["max"]), bool(images.get("list", False)))
        if images
        else None,
        strength=entry.get("strength"),
        text_to_image=text_to_image,
    )
