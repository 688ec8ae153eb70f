"""The pricing table (pricing.json): the shipped figures, their provenance, and how
an estimate is computed from them."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from imagen_replicate.config import parse_model
from imagen_replicate.pricing import parse, table


def shipped() -> dict:
    return json.loads(resources.files("imagen_replicate").joinpath("pricing.json").read_text())


@pytest.mark.parametrize(
    ("model", "usd"),
    [
        ("black-forest-labs/flux-schnell", 0.003),
        ("black-forest-labs/flux-dev", 0.025),
        ("black-forest-labs/flux-1.1-pro", 0.04),
        ("black-forest-labs/flux-kontext-pro", 0.04),
        ("black-forest-labs/flux-kontext-max", 0.08),
        ("stability-ai/stable-diffusion-3.5-medium", 0.035),
        ("stability-ai/stable-diffusion-3.5-large", 0.065),
    ],
)
def test_the_issues_prices_per_image(model, usd):
    price = table().price_for(parse_model(model))
    assert price is not None and price.usd_per_image == usd and not price.per_second
    assert price.cost(1, None) == usd


def test_every_entry_has_a_date_a_source_page_and_where_it_was_seen():
    data = shipped()
    assert re.fullmatch(r"\d{4}-\d{2}", data["taken"])
    for model, entry in data["models"].items():
        assert re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", entry["date"]), model
        assert entry["source"] == f"https://replicate.com/{model}", model
        assert entry["seen"], model


def test_a_version_is_priced_by_its_model_unless_it_has_its_own_entry():
    prices = parse(
        {
            "models": {
                "a/b": {"usd_per_image": 0.01, "date": "2026", "source": "s"},
                "a/b:" + "f" * 64: {"usd_per_second": 0.002, "date": "2026", "source": "s"},
            }
        }
    )
    assert prices.price_for(parse_model("a/b:" + "e" * 64)).usd_per_image == 0.01
    per_second = prices.price_for(parse_model("a/b:" + "f" * 64))
    assert per_second.per_second and per_second.cost(4, 3.0) == 0.006
    assert per_second.cost(1, None) is None  # no predict_time, no estimate
    assert prices.price_for(parse_model("c/d")) is None


def test_costs_are_rounded_to_a_millionth():
    price = table().price_for(parse_model("black-forest-labs/flux-schnell"))
    assert price.cost(3, None) == 0.009  # not 0.009000000000000001


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"date": "2026", "source": "s"}, "exactly one of usd_per_image, usd_per_second"),
        (
            {"usd_per_image": 1, "usd_per_second": 1, "date": "2026", "source": "s"},
            "exactly one",
        ),
        ({"usd_per_image": -1, "date": "2026", "source": "s"}, "a bad price -1"),
        ({"usd_per_image": "cheap", "date": "2026", "source": "s"}, "a bad price 'cheap'"),
        ({"usd_per_image": 0.1, "source": "s"}, "needs a date and a source"),
    ],
)
def test_malformed_entries_are_refused(entry, message):
    with pytest.raises(ValueError, match=message):
        parse({"models": {"a/b": entry}})
