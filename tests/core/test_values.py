"""value_repr: the text of attrs' own repr, without a compiled method per class."""

from __future__ import annotations

from typing import Any

import attrs

from imagen_core.models import Request
from imagen_core.values import value_repr


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
