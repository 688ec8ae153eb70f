"""value_repr: the text of attrs' own repr, without a compiled method per class."""

from __future__ import annotations

from typing import Any
from unittest import mock

import attrs
import pytest

from imagen_core.models import Request
from imagen_core.values import value_eq, value_hash, value_repr


@attrs.frozen
class Generated:
    name: str
    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    secret: str = attrs.field(default="", repr=False)
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(repr=False)
class Shared:
    __repr__ = value_repr

    name: str
    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    secret: str = attrs.field(default="", repr=False)
    extra: dict[str, Any] = attrs.field(factory=dict)


def test_the_text_is_attrs_own():
    args: dict[str, Any] = {"name": "a'b", "data": b"xyz", "secret": "s3cret", "extra": {"k": [1]}}
    assert repr(Shared(**args)) == repr(Generated(**args)).replace("Generated", "Shared")
    assert "s3cret" not in repr(Shared(**args))


def test_a_value_inside_itself_is_shown_as_dots_as_attrs_does():
    loop_generated, loop_shared = Generated("a", b""), Shared("a", b"")
    loop_generated.extra["self"] = loop_generated
    loop_shared.extra["self"] = loop_shared
    assert repr(loop_shared) == repr(loop_generated).replace("Generated", "Shared")
    assert repr(loop_shared) == "Shared(name='a', data=<0 bytes>, extra={'self': ...})"


def test_request_reads_as_before():
    assert repr(Request("x", seed=3)) == (
        "Request(prompt='x', negative='', width=1024, height=1024, seed=3, steps=0, "
        "style=None, backend=None, extra={}, inputs=(), strength=None)"
    )


# value_eq and value_hash against attrs' generated __eq__/__hash__, on twins.
def _key(value: str) -> str:
    return value.lower()


@attrs.frozen
class GeneratedEq:
    name: str
    size: float = 0.0
    label: str = attrs.field(default="", eq=_key)
    note: str = attrs.field(default="", eq=False)
    cached: int = attrs.field(default=0, hash=False)
    extra: tuple[Any, ...] = ()


@attrs.frozen(repr=False, eq=False)
class SharedEq:
    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    name: str
    size: float = 0.0
    label: str = attrs.field(default="", eq=_key)
    note: str = attrs.field(default="", eq=False)
    cached: int = attrs.field(default=0, hash=False)
    extra: tuple[Any, ...] = ()


PAIRS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"name": "a"}, {"name": "a"}),
    ({"name": "a"}, {"name": "b"}),
    ({"name": "a", "size": 1.0}, {"name": "a", "size": 1}),  # 1.0 == 1, as attrs compares
    ({"name": "a", "label": "X"}, {"name": "a", "label": "x"}),  # through the key
    ({"name": "a", "label": "X"}, {"name": "a", "label": "y"}),
    ({"name": "a", "note": "one"}, {"name": "a", "note": "two"}),  # not compared
    ({"name": "a", "cached": 1}, {"name": "a", "cached": 2}),  # compared, not hashed
    ({"name": "a", "extra": (1, [2])}, {"name": "a", "extra": (1, [2])}),  # unhashable
    ({"name": "a", "size": float("nan")}, {"name": "a", "size": float("nan")}),
]


@pytest.mark.parametrize(("left", "right"), PAIRS)
def test_equality_and_hash_are_attrs_own(left, right):
    generated = GeneratedEq(**left), GeneratedEq(**right)
    shared = SharedEq(**left), SharedEq(**right)
    assert (shared[0] == shared[1]) is (generated[0] == generated[1])
    assert (shared[0] != shared[1]) is (generated[0] != generated[1])
    assert (shared[0] == shared[0]) is (generated[0] == generated[0])  # NaN: not equal
    try:
        hash(generated[0])
    except TypeError:
        with pytest.raises(TypeError, match="unhashable"):
            hash(shared[0])
        return
    if generated[0] == generated[1]:
        assert hash(shared[0]) == hash(shared[1])
    assert hash(shared[0]) == hash(SharedEq(**left))


def test_another_class_is_never_equal_and_may_answer_itself():
    value = SharedEq("a")
    assert value.__eq__(GeneratedEq("a")) is NotImplemented
    assert value != GeneratedEq("a") and value != "a"
    assert value == mock.ANY  # the other side's __eq__ is asked, as with attrs


def test_the_first_unequal_field_answers_before_later_ones_are_compared():
    # attrs compares field by field and stops at the first unequal pair; so does value_eq.
    class Explodes:
        def __eq__(self, other: object) -> bool:
            raise AssertionError("compared after an unequal field")

        __hash__ = object.__hash__

    boom = Explodes()
    assert SharedEq("a", extra=(boom,)) != SharedEq("b", extra=(boom,))


def test_imagen_values_use_the_shared_methods_and_compare_as_before():
    from imagen_core.config import Config, Instance, OutputConfig
    from imagen_core.ledger import LedgerConfig
    from imagen_core.models import Capabilities, Request, Result
    from imagen_core.queue import InputRef, Job
    from imagen_core.sqlite_queue import SQLiteQueueConfig

    shared = (Request, Result, Capabilities, Config, Instance, OutputConfig)
    for cls in (*shared, LedgerConfig, InputRef, Job, SQLiteQueueConfig):
        assert cls.__eq__ is value_eq and cls.__hash__ is value_hash, cls
    ref = InputRef(sha256="ab" * 32, role="image", source="a.png")
    assert ref == attrs.evolve(ref) and hash(ref) == hash(attrs.evolve(ref))
    assert ref != attrs.evolve(ref, role="mask")
    assert Request("x", seed=3) == Request("x", seed=3)
    assert Request("x", seed=3) != Request("x", seed=4)
    assert Capabilities(images=2) == Capabilities(images=2)
    assert hash(Capabilities(images=2)) == hash(Capabilities(images=2))
    assert len({Capabilities(), Capabilities(), Capabilities(mask=True)}) == 2
    with pytest.raises(TypeError, match="unhashable"):
        hash(Request("x"))  # its ``extra`` is a dict, as before
