"""Tables a plugin ships as data inside its package (model families, prices):
reading one, and building its entries with a message that names a bad one.

Adding a model is data, never Python: imagen-fal, imagen-replicate and
imagen-openai keep what they know of each model in JSON files next to their
modules and read them through these functions when a backend of theirs is
used. Cheap to import (nothing beyond the standard library).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

T = TypeVar("T")


def read_json(package: str, name: str) -> Any:
    """The JSON document ``name`` shipped inside ``package`` (``imagen_fal``,
    ``families.json``); ValueError naming the file when it is not valid JSON."""
    import json
    from importlib import resources

    text = resources.files(package).joinpath(name).read_text("utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(
            f"{package}/{name} is not valid JSON ({exc}); reinstall the plugin that ships it"
        ) from None


def build_entries(
    entries: Mapping[str, Any], build: Callable[[str, Any], T], *, what: str
) -> dict[str, T]:
    """Each entry of a table, by its key, as ``build(key, entry)`` makes it. An
    entry it cannot build (a missing field, a wrong type or value) raises
    ValueError naming it: ``families.json: family 'x' is malformed: KeyError('size')``
    for ``what="families.json: family"``."""
    built = {}
    for key, entry in entries.items():
        try:
            built[key] = build(key, entry)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{what} {key!r} is malformed: {exc!r}") from None
    return built


def check_price(entry: Mapping[str, Any], units: tuple[str, ...]) -> None:
    """A price table's entry gives exactly one of ``units`` (``usd_per_image``,
    ``usd_per_megapixel``, ...) as a number of 0 or more, and the ``date`` and
    ``source`` of the figure; ValueError saying what is wrong otherwise."""
    given = [unit for unit in units if entry.get(unit) is not None]
    if len(given) != 1:
        raise ValueError(f"needs exactly one of {', '.join(units)}")
    value = entry[given[0]]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"has a bad price {value!r}")
    if not entry.get("date") or not entry.get("source"):
        raise ValueError("needs a date and a source")
