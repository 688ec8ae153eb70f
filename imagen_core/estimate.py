"""``Estimate``: the price of one image of a request, before it runs.

A value of the plugin boundary like those of ``imagen_core.models`` (and
importable from there, and from ``imagen_core``), in a module of its own so that
a generation that asks no price (no ``--dry-run``, no ``--max-cost``, no budget)
never builds the class.
"""

from __future__ import annotations

import attrs

from imagen_core.models import ESTIMATE_BASES
from imagen_core.values import value_eq, value_hash, value_repr


@attrs.frozen(repr=False, eq=False)
class Estimate:
    """The price of one image of a request, before it runs. ``usd`` None means
    unknown. ``basis``: ``computed`` (a price table and what will be produced),
    ``estimated`` (a rate times an expected time), ``free``, ``unknown``.
    ``source`` says where the price comes from (a table and its date)."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    usd: float | None = None
    basis: str = attrs.field(default="unknown", validator=attrs.validators.in_(ESTIMATE_BASES))
    source: str = ""
