"""The shipped data files: every family and endpoint is well formed and sourced,
every price is dated and sourced, and malformed entries are named."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from imagen_fal.families import UNKNOWN, catalog, parse
from imagen_fal.pricing import megapixels, table
from imagen_fal.pricing import parse as parse_prices


def shipped(name: str) -> dict:
    return json.loads(resources.files("imagen_fal").joinpath(name).read_text("utf-8"))


def test_every_family_says_where_its_mapping_comes_from():
    families = catalog().families
    assert {"flux-schnell", "flux-dev", "kontext", "nano-banana", "seedream-v4"} <= set(families)
    for family in families.values():
        assert family.about and family.source, family.name
        if not family.text_to_image:
            assert family.images is not None, family.name


def test_the_issues_models_route_to_real_endpoints():
    routes = {
        m: catalog().route(m)
        for m in (
            "fal-ai/flux/schnell",
            "fal-ai/flux-pro/kontext",
            "fal-ai/nano-banana",
            "fal-ai/bytedance/seedream/v4",
        )
    }
    assert routes["fal-ai/flux/schnell"].edit is None
    assert (
        routes["fal-ai/flux-pro/kontext"].text.endpoint == "fal-ai/flux-pro/kontext/text-to-image"
    )
    assert routes["fal-ai/nano-banana"].edit.endpoint == "fal-ai/nano-banana/edit"
    seedream = routes["fal-ai/bytedance/seedream/v4"]
    assert (seedream.text.endpoint, seedream.edit.endpoint) == (
        "fal-ai/bytedance/seedream/v4/text-to-image",
        "fal-ai/bytedance/seedream/v4/edit",
    )
    assert catalog().route("someone/else").text.family is UNKNOWN


# No source gave a figure for these: they are priced unknown, never guessed.
UNPRICED = {"fal-ai/flux/dev/image-to-image", "fal-ai/fast-sdxl"}


def test_every_listed_endpoint_has_a_dated_price_or_is_knowingly_unpriced():
    prices = table()
    for endpoint, entry in catalog().endpoints.items():
        if entry.family is None or endpoint in UNPRICED:  # (None: a pair's name)
            assert prices.price_for(endpoint) is None, endpoint
            continue
        price = prices.price_for(endpoint)
        assert price is not None, endpoint
        assert price.date and price.source == f"https://fal.ai/models/{endpoint}", endpoint
    for endpoint, entry in shipped("pricing.json")["endpoints"].items():
        assert entry["seen"], endpoint


@pytest.mark.parametrize(
    ("size", "units"),
    [((1024, 1024), 1), ((1024, 768), 1), ((1025, 1024), 2), ((16, 16), 1), ((2048, 2048), 4)],
)
def test_megapixels_are_whole_units_of_1024_squared(size, units):
    assert megapixels(*size) == units


def test_malformed_families_are_named():
    data = shipped("families.json")
    data["families"]["flux-dev"]["size"] = {"image_size": True, "aspect_ratio": ["1:1"]}
    with pytest.raises(ValueError, match="family 'flux-dev' is malformed"):
        parse(data)
    data = shipped("families.json")
    data["endpoints"]["fal-ai/x/y"] = {"family": "nope"}
    with pytest.raises(ValueError, match="fal-ai/x/y names no known family 'nope'"):
        parse(data)
    data = shipped("families.json")
    data["endpoints"]["fal-ai/x/y"] = {"family": "flux-dev", "edit": "fal-ai/x/z"}
    with pytest.raises(ValueError, match="fal-ai/x/y names fal-ai/x/z, which has no family"):
        parse(data)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"usd_per_image": 0.1, "usd_per_megapixel": 0.1, "date": "d", "source": "s"},
            "exactly one of",
        ),
        ({"usd_per_image": -1, "date": "d", "source": "s"}, "bad price -1"),
        ({"usd_per_image": True, "date": "d", "source": "s"}, "bad price True"),
        ({"usd_per_image": 0.1, "source": "s"}, "needs a date and a source"),
    ],
)
def test_malformed_prices_are_named(entry, message):
    with pytest.raises(ValueError, match=message):
        parse_prices({"endpoints": {"fal-ai/x": entry}})
