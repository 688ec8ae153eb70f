"""Request bodies: JSON structured by cattrs into frozen attrs classes, as
imagen.yaml is (the same strict converter: no ``"5"`` for a number, no unknown
keys), every failure a 422 naming the field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from imagen_core.models import MAX_PROMPT_CHARS  # one limit for the CLI, library and API
from imagen_web.errors import ApiError, invalid

if TYPE_CHECKING:
    from collections.abc import Iterator

    from imagen_core.models import Request

T = TypeVar("T")


class FieldError(ValueError):
    """A validator's complaint about one field (cattrs does not say which)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _text_under(limit: int) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, str) and len(value) > limit:
            raise FieldError(
                attribute.name, f"is {len(value)} characters long; the limit is {limit}"
            )

    return check


def _between(low: int, high: int) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
        if not low <= value <= high:
            raise FieldError(attribute.name, f"must be between {low} and {high}, got {value}")

    return check


def _prompt(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise FieldError(attribute.name, "is empty: describe the image")


def _fraction(_instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not 0 <= value <= 1:
        raise FieldError(attribute.name, f"must be from 0 to 1, got {value}")


def _one_source(instance: InputBody, _attribute: attrs.Attribute[Any], _value: object) -> None:
    if (instance.data is None) == (instance.id is None):
        raise FieldError("images", 'give each image as {"data": BASE64} or {"id": GALLERY_ID}')


@attrs.frozen
class InputBody:
    """An input image in a JSON body: base64 (or a ``data:`` URI), or the id of
    an image of the gallery (``GET /v1/images``)."""

    data: str | None = None
    id: str | None = attrs.field(default=None, validator=_one_source)


@attrs.frozen
class GenerateBody:
    """``POST /v1/generate``: what ``imagen generate`` takes."""

    prompt: str = attrs.field(validator=[_prompt, _text_under(MAX_PROMPT_CHARS)])
    backend: str | None = None
    width: int = 1024
    height: int = 1024
    seed: int = 0
    steps: int = 0
    style: str | None = None
    negative: str = attrs.field(default="", validator=_text_under(MAX_PROMPT_CHARS))
    images: tuple[InputBody, ...] = ()  # the first is edited, the others are references
    mask: InputBody | None = None
    strength: float | None = attrs.field(default=None, validator=_fraction)

    def request(self) -> Request:
        """The Request; its own validators name the field (``width must be ...``)."""
        from imagen_core.errors import InvalidRequest
        from imagen_core.models import Request

        try:
            return Request(
                prompt=self.prompt,
                negative=self.negative,
                width=self.width,
                height=self.height,
                seed=self.seed,
                steps=self.steps,
                style=self.style,
                backend=self.backend,
                strength=self.strength,
            )
        except InvalidRequest as exc:
            field = str(exc).split(" ", 1)[0]
            raise invalid(field, str(exc).removeprefix(field).strip()) from None


@attrs.frozen
class JobBody(GenerateBody):
    """``POST /v1/jobs``: what ``imagen submit`` takes."""

    max_attempts: int = attrs.field(default=3, validator=_between(1, 100))


def structure(data: Any, cls: type[T]) -> T:
    """``data`` (parsed JSON) as ``cls``, or a 422 naming the first bad field."""
    if not isinstance(data, dict):
        raise invalid("body", "expected a JSON object")
    from cattrs.errors import ClassValidationError

    from imagen_core.config import converter

    try:
        return converter().structure(data, cls)
    except ClassValidationError as exc:
        field, message = next(_problems(exc, cls), ("body", "is not valid"))
        raise invalid(field, message) from None
    except ApiError:
        raise
    except Exception as exc:
        raise invalid("body", str(exc) or type(exc).__name__) from None


def _problems(exc: BaseException, cls: type) -> Iterator[tuple[str, str]]:
    from cattrs.errors import (
        AttributeValidationNote,
        BaseValidationError,
        ForbiddenExtraKeysError,
    )

    if isinstance(exc, ForbiddenExtraKeysError):
        known = ", ".join(f.name for f in attrs.fields(cls))
        for key in sorted(exc.extra_fields):
            yield key, f"unknown field; known fields: {known}"
        return
    if isinstance(exc, BaseValidationError):  # a class, or a list of them (images)
        for sub in exc.exceptions:
            notes = [
                n for n in getattr(sub, "__notes__", []) if isinstance(n, AttributeValidationNote)
            ]
            if notes and not isinstance(sub, (BaseValidationError, FieldError)):
                yield notes[0].name, _message(sub)
            else:
                yield from _problems(sub, cls)
        return
    if isinstance(exc, FieldError):
        yield exc.field, str(exc)
        return
    yield "body", _message(exc)


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    return str(exc) or type(exc).__name__
