"""What imagen's frozen attrs values share: their repr, equality and hash.

attrs writes the source of a ``__repr__``, an ``__eq__`` and a ``__hash__`` for
every class it builds and compiles them at import, about 0.3 ms a class of a
start's CPU; ``imagen generate`` builds some fifteen classes before it does
anything. These functions give the same results from one place: a class uses
them with ``repr=False, eq=False`` and, in its body::

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

(``eq=False`` makes attrs leave ``__eq__``, ``__ne__`` and ``__hash__`` to the
class; ``!=`` is Python's inverse of ``__eq__``, as attrs' own is.)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    # A class's fields as (name, key or None).
    _Fields = tuple[tuple[str, Callable[[Any], Any] | None], ...]

_active = threading.local()


def value_repr(self: Any) -> str:
    """attrs' repr of ``self``: ``Request(prompt='x', negative='', ...)``, every
    field that has ``repr`` on, through its own repr callable when it has one,
    and ``...`` for a value met again inside itself."""
    seen: set[int] | None = getattr(_active, "seen", None)
    if seen is None:
        seen = _active.seen = set()
    if id(self) in seen:
        return "..."
    seen.add(id(self))
    try:
        shown = []
        for field in type(self).__attrs_attrs__:
            if field.repr is False:
                continue
            value = getattr(self, field.name)
            shown.append(f"{field.name}={repr(value) if field.repr is True else field.repr(value)}")
        return f"{type(self).__qualname__.rsplit('>.', 1)[-1]}({', '.join(shown)})"
    finally:
        seen.discard(id(self))


# Each class's fields compared, and hashed, worked out on first use.
_compared: dict[type, _Fields] = {}
_hashed: dict[type, _Fields] = {}


def _compared_fields(cls: type) -> _Fields:
    fields = _compared.get(cls)
    if fields is None:  # attrs' rule: compared unless ``eq=False``; ``eq=key`` compares key(value)
        attributes = cls.__attrs_attrs__  # type: ignore[attr-defined]
        fields = _compared[cls] = tuple((a.name, a.eq_key) for a in attributes if a.eq)
    return fields


def _hashed_fields(cls: type) -> _Fields:
    fields = _hashed.get(cls)
    if fields is None:  # attrs' rule: ``hash=True``, or left unset and compared
        attributes = cls.__attrs_attrs__  # type: ignore[attr-defined]
        fields = _hashed[cls] = tuple(
            (a.name, a.eq_key) for a in attributes if a.hash is True or (a.hash is None and a.eq)
        )
    return fields


def value_eq(self: Any, other: object) -> bool:
    """attrs' ``__eq__``: NotImplemented for another class, else the fields
    compared in order, answering what the first unequal pair (or the last) says."""
    if other.__class__ is not self.__class__:
        return NotImplemented  # type: ignore[no-any-return]
    result: Any = True
    for name, key in _compared_fields(self.__class__):
        if key is None:
            result = getattr(self, name) == getattr(other, name)
        else:
            result = key(getattr(self, name)) == key(getattr(other, name))
        if not result:
            break
    return result  # type: ignore[no-any-return]


def value_hash(self: Any) -> int:
    """attrs' ``__hash__`` of a frozen value: its class and its hashed fields' values."""
    fields = _hashed_fields(self.__class__)
    return hash(
        (
            self.__class__,
            *(getattr(self, n) if key is None else key(getattr(self, n)) for n, key in fields),
        )
    )
