"""The model families (families.json): the shipped data is well-formed and maps
imagen's request onto each family's real input names."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from imagen_core import Request
from imagen_replicate.families import UNKNOWN, catalog, family_for, parse


def shipped() -> dict:
    return json.loads(resources.files("imagen_replicate").joinpath("families.json").read_text())


def test_every_shipped_family_parses_and_names_its_source():
    families = catalog()
    assert set(families) == {
        "flux-schnell",
        "flux-dev",
        "flux-pro",
        "sd35",
        "ideogram-v3",
        "sdxl",
        "flux-kontext",
        "flux-fill",
        "nano-banana",
        "gpt-image-1",
        "seedream-4",
        "qwen-image-edit",
    }
    for family in families.values():
        assert family.about and family.source and family.models
        # Only the models whose output follows the input image have no size rule.
        assert family.size or (family.inputs and family.inputs.requires_image)
        # Where each image input's name comes from is said in the data.
        assert family.inputs is None or family.inputs.source


def test_no_model_is_in_two_families():
    models = [m for family in catalog().values() for m in family.models]
    assert len(models) == len(set(models))


def test_flux_sizes_are_cog_flux_aspect_ratios():
    # cog-flux ASPECT_RATIOS, quoted in the API reference (§1.8).
    sizes = catalog()["flux-schnell"].size.aspect_ratio.sizes
    assert sizes == {
        "1:1": (1024, 1024),
        "16:9": (1344, 768),
        "21:9": (1536, 640),
        "3:2": (1216, 832),
        "2:3": (832, 1216),
        "4:5": (896, 1088),
        "5:4": (1088, 896),
        "3:4": (896, 1152),
        "4:3": (1152, 896),
        "9:16": (768, 1344),
        "9:21": (640, 1536),
    }
    assert catalog()["flux-dev"].size == catalog()["flux-schnell"].size


@pytest.mark.parametrize(
    ("model", "request_", "sent", "adjusted"),
    [
        (
            "black-forest-labs/flux-schnell",
            Request("p", width=1344, height=768),
            {"aspect_ratio": "16:9", "megapixels": "1"},
            None,
        ),
        (
            "black-forest-labs/flux-schnell",
            Request("p", width=672, height=384),  # 16:9 at 0.25 MP: halved per side
            {"aspect_ratio": "16:9", "megapixels": "0.25"},
            None,
        ),
        (
            "black-forest-labs/flux-schnell",
            Request("p", width=1920, height=1080),
            {"aspect_ratio": "16:9", "megapixels": "1"},
            "1920x1080 is sent as aspect_ratio 16:9 and megapixels 1: this model makes 1344x768",
        ),
        (
            "black-forest-labs/flux-dev",
            Request("p", width=300, height=300, steps=30, extra={"cfg": 2.5}),
            {
                "aspect_ratio": "1:1",
                "megapixels": "0.25",
                "num_inference_steps": 30,
                "guidance": 2.5,
            },
            "300x300 is sent as aspect_ratio 1:1 and megapixels 0.25: this model makes 512x512",
        ),
        (
            "black-forest-labs/flux-1.1-pro",
            Request("p", width=1600, height=100),
            {"aspect_ratio": "custom", "width": 1440, "height": 256},
            "1600x100 is sent as 1440x256 (multiples of 32, 256-1440 per side)",
        ),
        (
            "black-forest-labs/flux-1.1-pro",
            Request("p", width=1920, height=1080),  # exactly 16:9: a preset
            {"aspect_ratio": "16:9"},
            None,
        ),
        (
            "stability-ai/stable-diffusion-3.5-medium",
            Request("p", width=768, height=1024, steps=40, negative="text", extra={"cfg": 5}),
            {"aspect_ratio": "3:4", "steps": 40, "cfg": 5, "negative_prompt": "text"},
            None,
        ),
        (
            "ideogram-ai/ideogram-v3-quality",
            Request("p", width=600, height=1800),
            {"aspect_ratio": "1:3"},
            None,
        ),
        (
            "stability-ai/sdxl",
            Request("p", width=1000, height=603, steps=25, negative="n", extra={"cfg": 7}),
            {
                "width": 1000,
                "height": 600,
                "num_inference_steps": 25,
                "guidance_scale": 7,
                "negative_prompt": "n",
            },
            "1000x603 is sent as 1000x600 (multiples of 8, 256-2048 per side)",
        ),
    ],
)
def test_request_maps_onto_the_familys_inputs(model, request_, sent, adjusted):
    mapped = family_for(model).build_input(request_, 77)
    assert mapped.input == {"prompt": "p", "seed": 77, **sent}
    assert mapped.adjusted == adjusted
    assert mapped.ignored == []


@pytest.mark.parametrize(
    ("model", "ignored", "taken"),
    [
        ("black-forest-labs/flux-schnell", ["cfg", "negative prompt"], {"num_inference_steps"}),
        ("black-forest-labs/flux-1.1-pro", ["steps", "cfg", "negative prompt"], set()),
        ("ideogram-ai/ideogram-v3-turbo", ["steps", "cfg", "negative prompt"], set()),
        ("stability-ai/stable-diffusion-3.5-large", [], {"steps", "cfg", "negative_prompt"}),
    ],
)
def test_what_a_family_cannot_take_is_listed_not_sent(model, ignored, taken):
    request = Request("p", steps=4, negative="n", extra={"cfg": 3})
    mapped = family_for(model).build_input(request, 1)
    assert mapped.ignored == ignored
    size_keys = {"aspect_ratio", "megapixels", "width", "height"}
    assert set(mapped.input) - size_keys == {"prompt", "seed", *taken}


def test_unknown_models_get_prompt_and_seed_only():
    family = family_for("someone/other")
    assert family is UNKNOWN
    mapped = family.build_input(Request("p", width=640, height=480, steps=9, negative="n"), 5)
    assert mapped.input == {"prompt": "p", "seed": 5}
    assert mapped.ignored == ["steps", "negative prompt"] and mapped.adjusted is None


def test_the_family_key_overrides_the_lookup():
    assert family_for("someone/sdxl-finetune", "sdxl").name == "sdxl"
    assert family_for("black-forest-labs/flux-dev", "flux-schnell").name == "flux-schnell"


def test_a_new_model_of_a_known_family_is_one_line_of_data():
    data = shipped()
    data["families"]["flux-schnell"]["models"].append("someone/flux-schnell-copy")
    families = parse(data)
    assert "someone/flux-schnell-copy" in families["flux-schnell"].models


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        (lambda f: f.pop("steps"), "KeyError"),
        (lambda f: f["size"]["aspect_ratio"].update(choices=["1:0"]), "bad aspect ratio"),
        (lambda f: f["size"]["megapixels"].update(choices=["-1"]), "bad megapixels"),
        (lambda f: f["size"]["aspect_ratio"]["sizes"].update({"7:1": [7, 1]}), "not among"),
    ],
)
def test_malformed_data_is_refused_naming_the_family(change, fault):
    data = shipped()
    change(data["families"]["flux-dev"])
    with pytest.raises(ValueError, match=rf"family 'flux-dev' is malformed: .*{fault}"):
        parse(data)
