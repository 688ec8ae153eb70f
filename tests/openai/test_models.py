"""The model table (models.json): its shape, the sizes each family maps to, the
custom-size rule of gpt-image-2, and the prices with their dates and sources."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from imagen_openai.catalog import UNKNOWN, catalog, nearest, parse
from imagen_openai.pricing import before, from_usage


def shipped() -> dict:
    return json.loads(resources.files("imagen_openai").joinpath("models.json").read_text())


def test_the_shipped_table_parses_and_every_entry_has_a_source():
    table = catalog()
    assert set(table.families) == {"gpt-image", "gpt-image-2", "dall-e-3", "dall-e-2"}
    models = [m for f in table.families.values() for m in f.models]
    assert len(models) == len(set(models))  # a model is in one family only
    for family in table.families.values():
        assert "openai-python" in family.source or "openai.com" in family.source
    for price in table.prices.values():
        assert price.date[:4].isdigit() and "https://openai.com/api/pricing" in price.source
        assert catalog().family_for(price.model).known  # priced models are listed ones


def test_what_the_families_take():
    table = catalog()
    gpt, dalle3, dalle2 = (table.family_for(m) for m in ("gpt-image-1", "dall-e-3", "dall-e-2"))
    assert gpt.edits is not None and (gpt.edits.images, gpt.edits.mask) == (16, True)
    assert dalle2.edits is not None and (dalle2.edits.images, dalle2.edits.mask) == (1, True)
    assert dalle3.edits is None  # generations only
    assert gpt.gpt_options and not gpt.response_format and gpt.prompt_max == 32000
    assert not dalle3.gpt_options and dalle3.response_format and dalle3.prompt_max == 4000
    assert table.family_for("sd-cpp-local") is UNKNOWN


@pytest.mark.parametrize(
    ("asked", "made"),
    [
        ((1024, 1024), (1024, 1024)),
        ((1920, 1080), (1536, 1024)),
        ((1080, 1920), (1024, 1536)),
        ((1100, 1000), (1024, 1024)),  # nearer square than 3:2
        ((1300, 1000), (1536, 1024)),
        ((64, 64), (1024, 1024)),
    ],
)
def test_gpt_image_sizes(asked, made):
    assert catalog().family_for("gpt-image-1").size_for(*asked) == made


def test_nearest_goes_by_ratio_then_by_pixels():
    squares = ((256, 256), (512, 512), (1024, 1024))
    assert nearest(squares, 600, 600) == (512, 512)
    assert nearest(squares, 800, 800) == (1024, 1024)  # log scale: 800 is nearer 1024
    assert nearest(squares, 100, 300) == (256, 256)


@pytest.mark.parametrize(
    ("asked", "made"),
    [
        ((1920, 1088), (1920, 1088)),  # allowed as it is
        ((1920, 1080), (1920, 1088)),  # 1080 is no multiple of 16
        ((512, 512), (816, 816)),  # below the pixel window: scaled up to it
        ((4000, 4000), (2880, 2880)),  # above: scaled down
        ((3000, 500), (2112, 704)),  # 6:1 clamped to 3:1
    ],
)
def test_gpt_image_2_custom_sizes(asked, made):
    family = catalog().family_for("gpt-image-2")
    rule = family.custom_size
    assert rule is not None
    width, height = family.size_for(*asked)
    assert (width, height) == made
    assert rule.allows(width, height)


def test_an_unknown_model_gets_the_size_asked():
    assert UNKNOWN.size_for(640, 480) == (640, 480)


def test_cost_from_usage():
    price = catalog().price_for("gpt-image-1")
    usage = {
        "input_tokens": 250,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 200},
        "output_tokens": 4160,
        "total_tokens": 4410,
    }
    cost = from_usage(price, usage)
    assert cost.usd == pytest.approx((50 * 5 + 200 * 10 + 4160 * 40) / 1e6)
    assert cost.kind == "computed"
    # Without the details, the input is counted as text.
    cost = from_usage(price, {"input_tokens": 50, "output_tokens": 272})
    assert cost.usd == pytest.approx((50 * 5 + 272 * 40) / 1e6)
    assert from_usage(price, None) is None
    assert from_usage(price, {"input_tokens": "many", "output_tokens": 1}) is None


def test_cost_before_the_call():
    gpt = catalog().price_for("gpt-image-1")
    exact = before(gpt, quality="high", size="1536x1024", prompt="x" * 40, images=0)
    assert exact.usd == pytest.approx((10 * 5 + 6208 * 40) / 1e6) and exact.kind == "computed"
    auto = before(gpt, quality=None, size="1024x1024", prompt="x", images=0)
    assert auto.usd == pytest.approx((1 * 5 + 4160 * 40) / 1e6)  # auto priced as high
    assert auto.kind == "estimated"
    edit = before(gpt, quality="low", size="1024x1024", prompt="x", images=2)
    assert edit.kind == "estimated" and "2 input image(s) not counted" in edit.basis
    dalle = catalog().price_for("dall-e-3")
    assert before(dalle, quality=None, size="1792x1024", prompt="x", images=0).usd == 0.08
    assert before(dalle, quality="hd", size="512x512", prompt="x", images=0).usd is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["families"]["dall-e-2"].update(sizes=["256x"]),
            "family 'dall-e-2' is malformed",
        ),
        (lambda d: d["families"]["dall-e-3"].update(sizes=[]), "needs sizes or custom_size"),
        (lambda d: d["families"]["dall-e-3"].update(source=""), "needs a source"),
        (lambda d: d["prices"]["models"]["dall-e-3"].update(date=""), "needs a date and a source"),
        (
            lambda d: d["prices"]["models"]["dall-e-3"].update(usd_per_million={"output": 1}),
            "needs exactly one of usd_per_million, usd_per_image",
        ),
        (
            lambda d: d["prices"]["models"]["gpt-image-1"]["usd_per_million"].pop("text_input"),
            "usd_per_million needs text_input, image_input and output",
        ),
        (
            lambda d: d["prices"]["models"]["dall-e-2"]["usd_per_image"]["standard"].update(
                {"256x256": -1}
            ),
            "a negative price",
        ),
    ],
)
def test_a_malformed_table_names_the_entry(change, message):
    data = copy.deepcopy(shipped())
    change(data)
    with pytest.raises(ValueError, match=message):
        parse(data)
