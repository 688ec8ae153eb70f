"""Grid axes: ``NAME=VALUES`` parsed into typed values that change a Request.

Values are a CSV list (``seed=1,2,3``; quote a value holding a comma:
``negative="blurry, dark",none``) whose numeric items may be ranges:
``1..8`` (step 1), ``4..20:4``, ``1..7:1.5`` (both ends included when the
step lands on them). ``prompt`` takes whole prompts separated by ``|``.
``sr`` is A1111's search/replace: the first value is searched in the prompt
and replaced by each value in turn (the first cell keeps the prompt).

Any other name is a value for the backend, sent as ``Request.extra[NAME]``
(``cfg=1,3.5,7``, ``sampler=euler,dpmpp_2m``); ``extra.NAME`` says so
explicitly. A name one letter away from a built-in axis (``seeds``) is taken
for a typo and refused, unless written as ``extra.NAME``.
"""

from __future__ import annotations

import csv
import difflib
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from imagen_core.errors import UsageError
from imagen_core.models import MAX_SEED, MAX_SIDE, Request

BUILTIN = ("backend", "seed", "steps", "size", "style", "negative", "strength", "prompt", "sr")
NUMERIC = ("seed", "steps", "strength")
# Names people write for a built-in axis; sent to the backend only as extra.NAME.
MEANT = {
    "width": "size",
    "height": "size",
    "model": "backend",
    "models": "backend",
    "negative_prompt": "negative",
    "denoise": "strength",
    "denoising_strength": "strength",
    "search_replace": "sr",
}
MAX_VALUES = 1000  # one axis; a range that long is a typo (seed=1..100000)
_EXTRA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RANGE = re.compile(r"\s*(-?[0-9.]+)\s*\.\.\s*(-?[0-9.]+)\s*(?::\s*(-?[0-9.]+)\s*)?")
_SIZE = re.compile(r"\s*(\d{1,9})\s*[xX×]\s*(\d{1,9})\s*")


@attrs.frozen
class Axis:
    """One axis: its name (a built-in one, or an extra key), and its values.

    ``labels`` are the values as written for headers ("1024x768", "euler");
    ``values`` are what is set on the Request (int, float, str, (w, h))."""

    name: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]
    extra: bool = False  # a Request.extra key

    def apply(self, request: Request, index: int) -> Request:
        """``request`` with this axis at its ``index``-th value."""
        value = self.values[index]
        if self.extra:
            return attrs.evolve(request, extra={**request.extra, self.name: value})
        if self.name == "size":
            return attrs.evolve(request, width=value[0], height=value[1])
        if self.name == "sr":
            search = self.values[0]
            return attrs.evolve(request, prompt=request.prompt.replace(search, value))
        if self.name == "style":
            return attrs.evolve(request, style=value or None)
        return attrs.evolve(request, **{self.name: value})

    def as_dict(self) -> dict[str, Any]:
        values = [list(v) if isinstance(v, tuple) else v for v in self.values]
        return {
            "name": self.name,
            "extra": self.extra,
            "values": values,
            "labels": list(self.labels),
        }


def parse_axis(spec: str, *, option: str = "--x") -> Axis:
    """``NAME=VALUES`` as an Axis; UsageError naming ``option`` when malformed."""
    name, sep, text = spec.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(
            f"{option} {spec!r}: write NAME=VALUES, "
            f"e.g. {option} seed=1,2,3 or {option} steps=4..20:4"
        )
    extra = False
    if name.startswith("extra."):
        name, extra = name[len("extra.") :], True
    elif name not in BUILTIN:
        near = [MEANT[name.lower()]] if name.lower() in MEANT else []
        near = near or difflib.get_close_matches(name.lower(), BUILTIN, n=1, cutoff=0.75)
        if near:
            raise UsageError(
                f"{option}: unknown axis {name!r}; did you mean {near[0]}? "
                f"(to send {name!r} to the backend as is, write extra.{name}=...)"
            )
        extra = True
    if extra and not _EXTRA_NAME.fullmatch(name):
        raise UsageError(
            f"{option}: {name!r} is not a backend value name; use letters, digits and _ "
            f"(axes: {', '.join(BUILTIN)}, or a name the backend takes, e.g. cfg)"
        )
    items = _split(text, "|" if name == "prompt" and not extra else ",", option, name)
    if extra:
        values, labels = _extra_values(items, option, name)
    else:
        values, labels = _builtin_values(name, items, option)
    if len(values) > MAX_VALUES:
        raise UsageError(
            f"{option} {name}: {len(values)} values; an axis takes at most {MAX_VALUES}"
        )
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise UsageError(
            f"{option} {name}: value {', '.join(twice)} is listed twice; list each once"
        )
    return Axis(name, tuple(values), tuple(labels), extra)


def _split(text: str, delimiter: str, option: str, name: str) -> list[str]:
    try:
        rows = list(csv.reader([text], delimiter=delimiter, skipinitialspace=True, strict=True))
    except csv.Error as exc:
        raise UsageError(
            f"{option} {name}: cannot read the values ({exc}); quote a value holding "
            f'{delimiter!r} as in CSV: {name}="a{delimiter} b",c'
        ) from None
    items = [item.strip() for item in rows[0]] if rows else []
    if not items or (len(items) == 1 and not items[0] and name not in ("negative", "style")):
        raise UsageError(f"{option} {name}: no values; give at least one, e.g. {name}=a,b")
    return items


def _builtin_values(name: str, items: list[str], option: str) -> tuple[list[Any], list[str]]:
    where = f"{option} {name}"
    if name in NUMERIC:
        numbers = _expand(items, where, integer=name != "strength")
        for number in numbers:
            _check_range(name, number, where)
        return numbers, [_label(n) for n in numbers]
    if name == "size":
        sizes = []
        for item in items:
            match = _SIZE.fullmatch(item)
            if not match:
                raise UsageError(
                    f"{where}: {item!r} is not WIDTHxHEIGHT, e.g. size=512x512,1024x768"
                )
            width, height = int(match.group(1)), int(match.group(2))
            if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
                raise UsageError(f"{where}: {item} is out of range; each side is 1 to {MAX_SIDE}")
            sizes.append((width, height))
        return sizes, [f"{w}x{h}" for w, h in sizes]
    if name in ("prompt", "sr"):
        if any(not item for item in items):
            raise UsageError(f"{where}: a value is empty; every {name} value needs text")
        if name == "sr" and len(items) < 2:
            raise UsageError(
                f"{where}: give the text to search for and at least one replacement, "
                "e.g. sr=red,blue,green"
            )
        return list(items), list(items)
    # backend, style, negative: text; an empty style or negative is "none"
    if name == "backend" and any(not item for item in items):
        raise UsageError(f"{where}: a backend name is empty")
    return list(items), [item or "(none)" for item in items]


def _check_range(name: str, number: float, where: str) -> None:
    if name == "seed" and not 0 <= number <= MAX_SEED:
        raise UsageError(f"{where}: seed {_label(number)} is out of range 0..{MAX_SEED}")
    if name == "steps" and not 0 <= number <= 10_000:
        raise UsageError(f"{where}: steps {_label(number)} is out of range 0..10000")
    if name == "strength" and not 0 <= number <= 1:
        raise UsageError(f"{where}: strength {_label(number)} is out of range 0..1")


def _extra_values(items: list[str], option: str, name: str) -> tuple[list[Any], list[str]]:
    """Numbers (and ranges) become int or float; anything else stays text."""
    values: list[Any] = []
    for item in items:
        if _RANGE.fullmatch(item) or _number(item) is not None:
            values.extend(_expand([item], f"{option} {name}", integer=False))
        else:
            values.append(item)
    return values, [_label(v) for v in values]


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _expand(items: list[str], where: str, *, integer: bool) -> list[Any]:
    """Numbers and ranges, in order; ints where every part is whole (and, when
    ``integer``, only whole numbers accepted)."""
    out: list[Any] = []
    for item in items:
        match = _RANGE.fullmatch(item)
        if match is None:
            number = _number(item)
            if number is None:
                kind = "a whole number" if integer else "a number"
                raise UsageError(f"{where}: {item!r} is not {kind} or a range like 1..8 or 4..20:4")
            out.append(_typed(number, where, integer))
            continue
        parts = [_number(group) for group in match.groups() if group is not None]
        if any(part is None for part in parts):
            raise UsageError(f"{where}: {item!r} is not a range like 1..8, 4..20:4 or 1..7:1.5")
        start, end = parts[0], parts[1]
        assert start is not None and end is not None
        step = parts[2] if len(parts) == 3 else Decimal(1 if end >= start else -1)
        assert step is not None
        if step == 0 or (end - start) * step < 0:
            raise UsageError(
                f"{where}: range {item!r} never reaches its end with step {step}; "
                "the step goes from the first number towards the second"
            )
        count = int((end - start) / step) + 1
        if count > MAX_VALUES:
            raise UsageError(f"{where}: range {item!r} has {count} values; at most {MAX_VALUES}")
        out.extend(_typed(start + i * step, where, integer) for i in range(count))
    return out


def _typed(number: Decimal, where: str, integer: bool) -> Any:
    if number == number.to_integral_value():
        return int(number)
    if integer:
        raise UsageError(f"{where}: {number} is not a whole number")
    return float(number)


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
