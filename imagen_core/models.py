"""The value types that cross the plugin boundary: Request in, Result out.

All are frozen attrs classes validated at construction, so a plugin never sees a
Request with an empty prompt or a negative size.

``ImageInput`` (defined in ``imagen_core.inputs``) and ``Estimate`` (in
``imagen_core.estimate``) are importable from here too, but their modules load,
and their classes are built, on first use (``__getattr__`` below): a generation
from text that asks no price needs neither, and each attrs class costs a start
about 0.3 ms to build.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from imagen_core.errors import InvalidRequest
from imagen_core.exports import lazy
from imagen_core.values import value_eq, value_hash, value_repr

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    # Loaded on first use (see __getattr__); ``as`` re-exports them for type
    # checkers. Request's ``inputs`` annotation names ImageInput: resolving it at
    # run time (``typing.get_type_hints``, cattrs) needs ``models.ImageInput``
    # touched first, which __getattr__ then keeps among this module's globals.
    from imagen_core.estimate import Estimate as Estimate
    from imagen_core.inputs import ImageInput as ImageInput  # noqa: TC004

MAX_SIDE = 8192
MAX_SEED = 2**64 - 1
MAX_INPUT_BYTES = 50 * 1024 * 1024
INPUT_ROLES = ("image", "reference", "mask")
# What Pillow calls each accepted input format, and its mime type.
INPUT_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def _int_in(name: str, low: int, high: int) -> Any:
    def check(_instance: object, _attribute: attrs.Attribute[int], value: object) -> None:
        if type(value) is int and low <= value <= high:
            return  # the common case, first: every Request read from a queue row checks four
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(f"{name} must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}")

    return check


# The longest prompt (and negative prompt) imagen takes, in characters: the
# same for the CLI, the library and the web API.
MAX_PROMPT_CHARS = 4000


def _prompt(_instance: object, _attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("the prompt is empty: give a prompt describing the image")
    _unicode(_instance, _attribute, value)
    _not_too_long("prompt", value)


def _negative(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value == "":
        return
    _unicode(instance, attribute, value)
    assert isinstance(value, str)
    _not_too_long("negative prompt", value)


def _not_too_long(what: str, value: str) -> None:
    if len(value) > MAX_PROMPT_CHARS:
        raise InvalidRequest(
            f"the {what} is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}"
        )


def _unicode(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    """Text that UTF-8 cannot hold (a lone surrogate, as a JSON ``\\ud800`` or
    undecodable bytes read with surrogateescape make) could be neither stored
    nor sent: refuse it here, naming where it is."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{attribute.name} must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(
            f"{attribute.name} is not valid text at character {exc.start + 1} "
            f"({value[exc.start]!r}, a lone surrogate or undecodable byte): "
            "send UTF-8 text"
        ) from None


def _copy(value: Mapping[str, Any]) -> dict[str, Any]:
    # A typed converter: with ``converter=dict`` type checkers reject dict literals.
    return dict(value)


def _inputs(value: Iterable[ImageInput]) -> tuple[ImageInput, ...]:
    return tuple(value)


def _check_inputs(
    _instance: object, _attribute: attrs.Attribute[tuple[ImageInput, ...]], value: object
) -> None:
    assert isinstance(value, tuple)
    if not value:
        return
    from imagen_core.inputs import ImageInput

    if not all(isinstance(item, ImageInput) for item in value):
        raise InvalidRequest("inputs must be ImageInput values (ImageInput.from_path(...))")
    roles = [item.role for item in value]
    if roles.count("image") > 1:
        raise InvalidRequest("a request takes one image to edit; give further ones as references")
    if roles.count("mask") > 1:
        raise InvalidRequest("a request takes at most one mask")
    if "mask" in roles and "image" not in roles:
        raise InvalidRequest("a mask needs an image to apply to: give the image too")
    images = [role for role in roles if role != "mask"]
    if "image" in images and images[0] != "image":
        raise InvalidRequest("the image to edit comes before the references")


def _strength(_instance: object, _attribute: attrs.Attribute[float | None], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(f"strength must be a number from 0 to 1, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise InvalidRequest(f"strength must be from 0 to 1, got {value}")


def _optional_float(value: object) -> object:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


@attrs.frozen(repr=False, eq=False)
class Request:
    """What to generate. ``seed=0`` asks the backend to pick one; ``steps=0`` means
    the backend's default. ``backend`` names a configured instance (None = default).
    ``extra`` carries backend-specific values a plugin documents (e.g. ``cfg``).
    ``inputs`` are the input images (the image to edit first, then references, and
    a mask); ``strength`` (0..1, None = the backend's default) is how far from the
    input image to go."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    prompt: str = attrs.field(validator=_prompt)
    negative: str = attrs.field(default="", validator=_negative)
    width: int = attrs.field(default=1024, validator=_int_in("width", 1, MAX_SIDE))
    height: int = attrs.field(default=1024, validator=_int_in("height", 1, MAX_SIDE))
    seed: int = attrs.field(default=0, validator=_int_in("seed", 0, MAX_SEED))
    steps: int = attrs.field(default=0, validator=_int_in("steps", 0, 10_000))
    style: str | None = None
    backend: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, converter=_copy)
    inputs: tuple[ImageInput, ...] = attrs.field(
        default=(), converter=_inputs, validator=_check_inputs
    )
    strength: float | None = attrs.field(
        default=None, converter=_optional_float, validator=_strength
    )

    @property
    def image(self) -> ImageInput | None:
        """The image to edit (or the init image), if any."""
        return next((item for item in self.inputs if item.role == "image"), None)

    @property
    def references(self) -> tuple[ImageInput, ...]:
        return tuple(item for item in self.inputs if item.role == "reference")

    @property
    def images(self) -> tuple[ImageInput, ...]:
        """The image to edit and the references, in order: every input but the mask."""
        return tuple(item for item in self.inputs if item.role != "mask")

    @property
    def mask(self) -> ImageInput | None:
        return next((item for item in self.inputs if item.role == "mask"), None)

    @property
    def prompt_sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.prompt.encode()).hexdigest()


COST_BASES = ("billed", "computed", "estimated")


@attrs.frozen(repr=False, eq=False)
class Result:
    """What a backend made. ``seed`` is the seed actually used (never 0 when the
    backend picked one). ``backend`` and ``latency_s`` are filled in by the core
    (instance name, wall time of ``generate``); a backend may leave the defaults."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    image: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    seed: int
    model: str
    mime_type: str = "image/png"
    backend: str = ""
    latency_s: float = 0.0
    cost_usd: float | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict, converter=_copy)
    # How cost_usd was known: "billed" (the service reported it), "computed" (a
    # price table and what was produced: the default), "estimated" (a rate times
    # the time it took).
    cost_basis: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(COST_BASES))
    )

    @property
    def extension(self) -> str:
        return MIME_EXTENSIONS.get(self.mime_type, self.mime_type.rpartition("/")[2] or "bin")


MIME_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
ESTIMATE_BASES = ("computed", "estimated", "free", "unknown")


@attrs.frozen(repr=False, eq=False)
class Generation:
    """One finished generation, as handed to sinks and returned by ``generate()``.

    On failure ``result`` and ``path`` are None and ``error`` holds the message.
    ``request`` is the caller's request (its prompt unstyled); ``prompt_sent`` is
    the prompt the backend received after the style was applied."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    request: Request
    backend: str
    backend_type: str
    prompt_sent: str
    started_at: dt.datetime
    result: Result | None = None
    path: Path | None = None
    sidecar: Path | None = None
    error: str | None = None
    cloud_sync: str = "auto"

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen(repr=False, eq=False)
class Capabilities:
    """What a backend instance accepts; the core checks a request against it
    before calling the backend. A backend declares it with a ``capabilities()``
    method; without one it is taken to make images from text only."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    text_to_image: bool = True
    images: int = 0
    strength: bool = False
    mask: bool = False

    def lacks(self, request: Request) -> str | None:
        """What this backend lacks for ``request`` (a phrase), or None."""
        count = len(request.images)
        if count == 0 and not self.text_to_image:
            return "an input image (it edits images; give --image)"
        if count > self.images:
            if self.images == 0:
                return "input images (it makes images from text only)"
            return f"{count} input images (it takes at most {self.images})"
        if request.mask is not None and not self.mask:
            return "a mask (it does not inpaint)"
        if request.strength is not None and not self.strength:
            return "a strength (it has no img2img strength)"
        return None

    def summary(self) -> str:
        parts = ["text"] if self.text_to_image else []
        if self.images:
            parts.append(f"{self.images} image" + ("s" if self.images > 1 else ""))
        if self.strength:
            parts.append("strength")
        if self.mask:
            parts.append("mask")
        return ", ".join(parts) or "nothing"

    def as_dict(self) -> dict[str, Any]:
        return {
            "text_to_image": self.text_to_image,
            "images": self.images,
            "strength": self.strength,
            "mask": self.mask,
        }


def capabilities_of(backend: object) -> Capabilities:
    """The backend's declared capabilities, or text-to-image only."""
    declare = getattr(backend, "capabilities", None)
    if declare is None:
        return Capabilities()
    found = declare()
    if not isinstance(found, Capabilities):
        raise TypeError(f"{type(backend).__name__}.capabilities() returned {found!r}")
    return found


def estimate_of(backend: object, request: Request) -> Estimate:
    """The backend's estimate for one image of ``request``, or unknown."""
    from imagen_core.estimate import Estimate

    estimate = getattr(backend, "estimate", None)
    if estimate is None:
        return Estimate()
    found = estimate(request)
    if not isinstance(found, Estimate):
        raise TypeError(f"{type(backend).__name__}.estimate() returned {found!r}")
    return found


class Progress(Protocol):
    """Called by a backend while it works: ``progress(3, 20)`` is step 3 of 20;
    ``message`` names a phase ("queued", "loading model") when there is one."""

    def __call__(self, done: int, total: int, message: str = "") -> None: ...


class Backend(Protocol):
    """The backend contract (also the worker contract)."""

    def generate(self, request: Request, progress: Progress) -> Result: ...


class Sink(Protocol):
    """Where a finished generation goes after the image is on disk. ``send`` is
    best-effort: an exception is reported and does not fail the generation.
    A sink may also define ``check(cloud_sync: str) -> None`` which runs before
    generating and may raise ConfigError to stop a run that could not be recorded."""

    def send(self, generation: Generation) -> None: ...


def no_progress(done: int, total: int, message: str = "") -> None:
    """A Progress that ignores everything."""


# The values defined elsewhere that this module exports, built on first use.
__getattr__ = lazy(
    __name__, {"ImageInput": "imagen_core.inputs", "Estimate": "imagen_core.estimate"}
)
