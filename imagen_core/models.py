"""The value types that cross the plugin boundary: Request in, Result out.

All are frozen attrs classes validated at construction, so a plugin never sees a
Request with an empty prompt or a negative size.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from imagen_core.errors import InvalidRequest

if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_SIDE = 8192
MAX_SEED = 2**64 - 1


def _int_in(name: str, low: int, high: int) -> Any:
    def check(_instance: object, _attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(f"{name} must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}")

    return check


def _prompt(_instance: object, _attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("the prompt is empty: give a prompt describing the image")


def _copy(value: Mapping[str, Any]) -> dict[str, Any]:
    # A typed converter: with ``converter=dict`` type checkers reject dict literals.
    return dict(value)


@attrs.frozen
class Request:
    """What to generate. ``seed=0`` asks the backend to pick one; ``steps=0`` means
    the backend's default. ``backend`` names a configured instance (None = default).
    ``extra`` carries backend-specific values a plugin documents (e.g. ``cfg``)."""

    prompt: str = attrs.field(validator=_prompt)
    negative: str = ""
    width: int = attrs.field(default=1024, validator=_int_in("width", 1, MAX_SIDE))
    height: int = attrs.field(default=1024, validator=_int_in("height", 1, MAX_SIDE))
    seed: int = attrs.field(default=0, validator=_int_in("seed", 0, MAX_SEED))
    steps: int = attrs.field(default=0, validator=_int_in("steps", 0, 10_000))
    style: str | None = None
    backend: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, converter=_copy)

    @property
    def prompt_sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.prompt.encode()).hexdigest()


@attrs.frozen
class Result:
    """What a backend made. ``seed`` is the seed actually used (never 0 when the
    backend picked one). ``backend`` and ``latency_s`` are filled in by the core
    (instance name, wall time of ``generate``); a backend may leave the defaults."""

    image: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    seed: int
    model: str
    mime_type: str = "image/png"
    backend: str = ""
    latency_s: float = 0.0
    cost_usd: float | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict, converter=_copy)

    @property
    def extension(self) -> str:
        return MIME_EXTENSIONS.get(self.mime_type, self.mime_type.rpartition("/")[2] or "bin")


MIME_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@attrs.frozen
class Generation:
    """One finished generation, as handed to sinks and returned by ``generate()``.

    On failure ``result`` and ``path`` are None and ``error`` holds the message.
    ``request`` is the caller's request (its prompt unstyled); ``prompt_sent`` is
    the prompt the backend received after the style was applied."""

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
