from __future__ import annotations

import attrs
import pytest

from imagen_core.errors import InvalidRequest, UsageError
from imagen_core.models import Request, Result


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "   \n"}, "prompt is empty"),
        ({"width": 0}, "width must be between 1 and 8192, got 0"),
        ({"height": 8193}, "height must be between 1 and 8192, got 8193"),
        ({"width": -5}, "width must be between 1 and 8192"),
        ({"seed": -1}, "seed must be between 0 and"),
        ({"steps": -2}, "steps must be between 0 and"),
        ({"width": True}, "width must be a whole number"),
        ({"seed": 1.5}, "seed must be a whole number"),
    ],
)
def test_request_rejects_bad_values(kwargs: dict, message: str) -> None:
    values = {"prompt": "a cat", **kwargs}
    with pytest.raises(InvalidRequest, match=message) as info:
        Request(**values)
    assert info.value.exit_code == 2
    assert isinstance(info.value, UsageError)


def test_request_accepts_the_edges_and_is_frozen() -> None:
    request = Request("a cat", width=8192, height=1, seed=2**64 - 1, steps=0)
    assert (request.width, request.height) == (8192, 1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.prompt = "a dog"  # type: ignore[misc]
    with pytest.raises(InvalidRequest):
        attrs.evolve(request, width=0)


def test_request_extra_is_copied_not_shared() -> None:
    extra = {"cfg": 3.5}
    request = Request("a cat", extra=extra)
    extra["cfg"] = 9
    assert request.extra == {"cfg": 3.5}


def test_result_repr_hides_the_image_bytes_and_extension_follows_mime() -> None:
    result = Result(image=b"\x89PNG" + b"x" * 5000, seed=3, model="m")
    assert "xxxx" not in repr(result)
    assert "<5004 bytes>" in repr(result)
    assert result.extension == "png"
    assert attrs.evolve(result, mime_type="image/jpeg").extension == "jpg"
    assert attrs.evolve(result, mime_type="image/webp").extension == "webp"


def test_warn_once(capsys):
    from imagen_core import warn

    warn("replicate: no price for a/b", once="price:a/b")
    warn("replicate: no price for a/b", once="price:a/b")
    warn("plain")
    assert capsys.readouterr().err == "imagen: replicate: no price for a/b\nimagen: plain\n"
