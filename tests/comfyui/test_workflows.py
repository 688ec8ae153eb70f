"""Workflow templates: the bundled graphs and their data, typed whole-value
substitution, and the errors for files that cannot be used."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from imagen_comfyui import workflows
from imagen_comfyui.backend import fit
from imagen_comfyui.bundled import bundled_names
from imagen_comfyui.errors import WorkflowError, model_folder
from imagen_comfyui.placeholders import coerce, from_request, type_of
from tests.comfyui.fake_comfyui import FakeComfyUI

BUNDLED = [
    "flux1-fill-inpaint",
    "flux1-schnell",
    "flux2-klein",
    "flux2-klein-edit",
    "flux2-klein-edit-ref",
    "sd35-medium",
    "sd35-medium-img2img",
]
TEXT_ONLY = ["flux1-schnell", "flux2-klein", "sd35-medium"]
KLEIN_EDIT = Counter(
    {
        "UNETLoader": 1,
        "CLIPLoader": 1,
        "VAELoader": 1,
        "CLIPTextEncode": 1,
        "ConditioningZeroOut": 1,
        "CFGGuider": 1,
        "KSamplerSelect": 1,
        "Flux2Scheduler": 1,
        "RandomNoise": 1,
        "EmptyFlux2LatentImage": 1,
        "SamplerCustomAdvanced": 1,
        "VAEDecode": 1,
        "SaveImage": 1,
        # Per input image (the official template's "Reference Conditioning"):
        "LoadImage": 1,
        "ImageScaleToTotalPixels": 1,
        "VAEEncode": 1,
        "ReferenceLatent": 2,
        # The latent and the scheduler take the scaled first image's size.
        "GetImageSize": 1,
    }
)
SECOND_REFERENCE = Counter(
    {"LoadImage": 1, "ImageScaleToTotalPixels": 1, "VAEEncode": 1, "ReferenceLatent": 2}
)

# The node classes of each model's official ComfyUI graph (ComfyUI_examples and
# Comfy-Org's workflow templates, converted to API format).
CLASSES = {
    "flux1-schnell": Counter(
        {
            "CheckpointLoaderSimple": 1,
            "CLIPTextEncode": 2,
            "EmptySD3LatentImage": 1,
            "KSampler": 1,
            "VAEDecode": 1,
            "SaveImage": 1,
        }
    ),
    "flux2-klein": Counter(
        {
            "UNETLoader": 1,
            "CLIPLoader": 1,
            "VAELoader": 1,
            "CLIPTextEncode": 1,
            "ConditioningZeroOut": 1,
            "CFGGuider": 1,
            "KSamplerSelect": 1,
            "Flux2Scheduler": 1,
            "RandomNoise": 1,
            "EmptyFlux2LatentImage": 1,
            "SamplerCustomAdvanced": 1,
            "VAEDecode": 1,
            "SaveImage": 1,
        }
    ),
    "sd35-medium": Counter(
        {
            "CheckpointLoaderSimple": 1,
            "CLIPTextEncode": 2,
            "EmptySD3LatentImage": 1,
            "KSampler": 1,
            "VAEDecode": 1,
            "SaveImage": 1,
        }
    ),
    "flux2-klein-edit": KLEIN_EDIT,
    "flux2-klein-edit-ref": KLEIN_EDIT + SECOND_REFERENCE,
    # ComfyUI's img2img example: LoadImage -> VAEEncode -> KSampler(denoise < 1).
    "sd35-medium-img2img": Counter(
        {
            "CheckpointLoaderSimple": 1,
            "CLIPTextEncode": 2,
            "LoadImage": 1,
            "ImageScaleToTotalPixels": 1,
            "VAEEncode": 1,
            "KSampler": 1,
            "VAEDecode": 1,
            "SaveImage": 1,
        }
    ),
    # ComfyUI's Flux Fill example: InpaintModelConditioning into a
    # DifferentialDiffusion model, guidance 30.
    "flux1-fill-inpaint": Counter(
        {
            "UNETLoader": 1,
            "DifferentialDiffusion": 1,
            "DualCLIPLoader": 1,
            "VAELoader": 1,
            "CLIPTextEncode": 2,
            "FluxGuidance": 1,
            "LoadImage": 1,
            "LoadImageMask": 1,
            "InpaintModelConditioning": 1,
            "KSampler": 1,
            "VAEDecode": 1,
            "SaveImage": 1,
        }
    ),
}
NEEDED = {"prompt", "seed", "steps", "cfg"}
INPUTS = {
    "flux1-fill-inpaint": ["image", "mask"],
    "flux2-klein-edit": ["image"],
    "flux2-klein-edit-ref": ["image", "image_2"],
    "sd35-medium-img2img": ["image"],
}
VALUES = {
    "prompt": 'a "quoted" \\ prompt with ${seed} inside',
    "negative": "blurry",
    "seed": 123456789012,
    "steps": 7,
    "width": 768,
    "height": 512,
    "cfg": 3,  # an int: must arrive as the float 3.0
    "denoise": 1,
    "sampler": "euler",
    "scheduler": "simple",
    "batch_size": 2,
    "image": "imagen/first.png",
    "image_2": "imagen/second.png",
    "mask": "imagen/mask.png",
}


def test_the_bundled_workflows():
    assert bundled_names() == BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_workflow_uses_the_models_real_nodes(name):
    workflow = workflows.load(name)
    assert workflow.source == "bundled"
    assert Counter(n["class_type"] for n in workflow.graph.values()) == CLASSES[name]
    assert workflow.output_nodes == ("9",)
    assert set(workflow.names) >= NEEDED
    # A size only where no input image sets it.
    assert {"width", "height"} <= set(workflow.names) or name in INPUTS
    # A negative prompt only where the model uses one.
    assert ("negative" in workflow.names) == name.startswith("sd35")
    # The inputs each takes, and what the core is told it takes.
    inputs = INPUTS.get(name, [])
    assert [n for n in workflow.names if n in VALUES and n.startswith(("image", "mask"))] == inputs
    capabilities = workflow.capabilities()
    assert capabilities.text_to_image == (not inputs)
    assert capabilities.images == len([n for n in inputs if n != "mask"])
    assert capabilities.mask == ("mask" in inputs)
    assert capabilities.strength == (name in ("sd35-medium-img2img", "flux1-fill-inpaint"))


@pytest.mark.parametrize("name", BUNDLED)
def test_every_placeholder_is_substituted_with_its_type(name):
    workflow = workflows.load(name)
    graph = workflow.substitute(VALUES)
    assert graph is not workflow.graph
    for placeholder in workflow.placeholders:
        value = graph[placeholder.node]["inputs"][placeholder.input]
        expected = coerce(placeholder.name, VALUES[placeholder.name])
        assert value == expected and type(value) is type_of(placeholder.name)
    text = json.dumps(graph)
    assert text.count("${") == 1  # only the one inside the prompt text itself
    assert VALUES["prompt"] in [n["inputs"].get("text") for n in graph.values()]
    # The template itself is untouched, ready for the next generation.
    assert "${prompt}" in json.dumps(workflow.graph)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_link_points_to_an_existing_node(name):
    graph = workflows.load(name).substitute(VALUES)
    linked = [
        (node_id, source)
        for node_id, node in graph.items()
        for _, source in workflows.links(node["inputs"])
    ]
    assert linked and all(source in graph for _, source in linked)
    # Every node but the output feeds something: no stray nodes.
    used = {source for _, source in linked}
    assert set(graph) - used == {"9"}


@pytest.mark.parametrize("name", BUNDLED)
def test_a_comfyui_validator_accepts_the_filled_graph(name):
    # The fake validates like ComfyUI (classes, inputs, types, ranges, choices, links,
    # and LoadImage's check that its file is in input/).
    fake = FakeComfyUI()
    for key in ("image", "image_2", "mask"):
        fake.files[("input", "imagen", VALUES[key].partition("/")[2])] = b"png"
    assert fake._validate(workflows.load(name).substitute(VALUES)) == (["9"], {})
    if name in INPUTS:
        fake.files.clear()
        refused = fake._validate(workflows.load(name).substitute(VALUES))
        assert refused.status == 400
        errors = json.loads(refused.body)["node_errors"]
        loader = next(n for n, node in errors.items() if node["class_type"] == "LoadImage")
        assert errors[loader]["errors"][0]["details"] == (
            "image - Invalid image file: imagen/first.png"
        )


@pytest.mark.parametrize("name", BUNDLED)
def test_data_gives_every_default_and_names_every_model_file(name):
    workflow = workflows.load(name)
    meta = workflow.meta
    assert meta.model and meta.description
    assert meta.size_multiple == (16 if "width" in workflow.names else 1)
    # Everything not taken from the request has a default: it runs with no config.
    assert {n for n in workflow.names if not from_request(n)} - {"negative"} <= set(meta.defaults)
    for key, value in meta.defaults.items():
        assert type(value) is type_of(key), key
    files = {f.name: f for f in meta.files}
    loaded = [
        (node["class_type"], key, value)
        for node in workflow.graph.values()
        for key, value in node["inputs"].items()
        if model_folder(node["class_type"], key) and isinstance(value, str)
    ]
    assert loaded
    for class_type, key, value in loaded:
        assert value in files, f"{value} ({class_type}.{key}) has no download entry"
        assert files[value].folder == model_folder(class_type, key)
        # Comfy-Org's repackaged files, but for FLUX.1 Fill [dev], which only its
        # makers publish (with the text encoders ComfyUI's example names).
        owners = ("black-forest-labs/", "comfyanonymous/") if name == "flux1-fill-inpaint" else ()
        assert files[value].url.startswith(
            tuple(f"https://huggingface.co/{o}" for o in ("Comfy-Org/", *owners))
        )
    assert len(files) == len(loaded)


def test_bundled_defaults_are_the_models_own():
    def defaults(name):
        return workflows.load(name).meta.defaults

    assert defaults("flux1-schnell")["steps"] == 4 and defaults("flux1-schnell")["cfg"] == 1.0
    assert defaults("flux2-klein")["steps"] == 4 and defaults("flux2-klein")["cfg"] == 1.0
    assert defaults("sd35-medium")["scheduler"] == "sgm_uniform"
    assert defaults("sd35-medium")["steps"] == 40 and defaults("sd35-medium")["cfg"] == 4.5


def test_flux2_klein_feeds_the_size_to_latent_and_scheduler():
    workflow = workflows.load("flux2-klein")
    where = {(p.node, p.input) for p in workflow.placeholders if p.name == "width"}
    assert where == {("66", "width"), ("62", "width")}


# ------------------------------------------------------------ substitution rules


def custom(tmp_path: Path, graph: dict, name: str = "mine", meta: dict | None = None) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(graph))
    if meta is not None:
        (tmp_path / f"{name}.meta.json").write_text(json.dumps(meta))
    return str(path)


def image_graph(**inputs) -> dict:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0, **inputs},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t"}},
    }


def test_only_whole_values_are_placeholders(tmp_path):
    graph = image_graph(label="a ${prompt} b", other="${prompt}", near="${ prompt}")
    workflow = workflows.load(custom(tmp_path, graph))
    out = workflow.substitute({"prompt": "cat"})["1"]["inputs"]
    assert out["label"] == "a ${prompt} b"
    assert out["near"] == "${ prompt}"
    assert out["other"] == "cat"


def test_own_placeholders_keep_their_type_nested_too(tmp_path):
    graph = image_graph(color="${color}", loras=["${lora}", {"strength": "${strength}"}])
    workflow = workflows.load(custom(tmp_path, graph))
    values = {"color": 255, "lora": ["a.safetensors", 0.5], "strength": 0.75}
    out = workflow.substitute(values)["1"]["inputs"]
    assert out["color"] == 255 and type(out["color"]) is int
    assert out["loras"] == [["a.safetensors", 0.5], {"strength": 0.75}]
    assert [p.input for p in workflow.placeholders] == ["color", "loras[0]", "loras[1].strength"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("seed", "5", "${seed} must be a whole number, got '5'"),
        ("steps", True, "${steps} must be a whole number, got True"),
        ("cfg", "high", "${cfg} must be a number, got 'high'"),
        ("prompt", 3, "${prompt} must be a string, got 3"),
    ],
)
def test_wrong_types_for_builtins_are_errors(name, value, message):
    with pytest.raises(WorkflowError) as info:
        coerce(name, value)
    assert str(info.value) == message


def test_a_placeholder_without_value_names_it_and_its_node(tmp_path):
    workflow = workflows.load(custom(tmp_path, image_graph(color="${tint}")))
    with pytest.raises(WorkflowError) as info:
        workflow.substitute({})
    assert str(info.value) == (
        "workflow mine: placeholder ${tint} in node 1 (EmptyImage) input color has no value; "
        "set vars.tint in the backend's block"
    )


def test_missing_steps_says_how_to_give_them(tmp_path):
    workflow = workflows.load(custom(tmp_path, image_graph(width="${steps}")))
    with pytest.raises(WorkflowError, match=r"pass --steps N or set defaults.steps"):
        workflow.substitute({})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON (Expecting property name enclosed in double quotes at line 1"),
        (
            json.dumps({"last_node_id": 9, "nodes": [], "links": [], "version": 0.4}),
            "is a ComfyUI UI-format workflow (it has nodes and links), which the API cannot run; "
            "export it with Save (API)",
        ),
        (
            "[1, 2]",
            "is not an API-format workflow: expected an object of nodes by id, got a JSON list",
        ),
        ("{}", "got an empty object"),
        (
            json.dumps({"1": {"inputs": {}}}),
            "is not an API-format workflow: node 1 has no class_type",
        ),
        (
            json.dumps({"1": {"class_type": "EmptyImage", "inputs": {}}}),
            "workflow mine has no image-output node (SaveImage or PreviewImage)",
        ),
        (
            json.dumps(
                {
                    "1": {"class_type": "EmptyImage", "inputs": {}},
                    "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
                }
            ),
            "SaveImageWebsocket only streams images; add a SaveImage node",
        ),
        (
            json.dumps({"2": {"class_type": "SaveImage", "inputs": {"images": ["99", 0]}}}),
            "node 2 (SaveImage) input images links to node 99, which is not in the workflow",
        ),
    ],
)
def test_unusable_workflow_files_say_why(tmp_path, text, message):
    path = tmp_path / "mine.json"
    path.write_text(text)
    with pytest.raises(WorkflowError) as info:
        workflows.load(str(path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_missing_file_and_an_unknown_name():
    with pytest.raises(WorkflowError, match=r"workflow file /no/such\.json does not exist"):
        workflows.load("/no/such.json")
    with pytest.raises(WorkflowError) as info:
        workflows.load("flux-schnell")
    assert str(info.value) == (
        "unknown bundled workflow 'flux-schnell' (did you mean 'flux1-schnell'?); bundled: "
        f"{', '.join(BUNDLED)}; or give the path of an API-format .json file"
    )


def test_output_node_must_be_in_the_graph(tmp_path):
    path = custom(tmp_path, image_graph())
    assert workflows.load(path, output_node="2").output_nodes == ("2",)
    with pytest.raises(WorkflowError) as info:
        workflows.load(path, output_node="7")
    assert str(info.value) == (
        "output_node '7' is not a node of workflow mine; its image outputs are: 2 (SaveImage)"
    )


def test_data_beside_a_custom_workflow_is_used(tmp_path):
    meta = {"model": "My Model", "defaults": {"cfg": 2, "tint": "red"}, "size_multiple": 64}
    workflow = workflows.load(custom(tmp_path, image_graph(), meta=meta))
    assert workflow.model == "My Model"
    assert workflow.meta.defaults == {"cfg": 2.0, "tint": "red"}
    assert type(workflow.meta.defaults["cfg"]) is float
    assert workflow.meta.size_multiple == 64


def test_without_data_the_model_is_the_loaded_file(tmp_path):
    graph = image_graph()
    graph["3"] = {"class_type": "UNETLoader", "inputs": {"unet_name": "sub/my-model.safetensors"}}
    assert workflows.load(custom(tmp_path, graph)).model == "my-model"
    assert workflows.load(custom(tmp_path, image_graph(), name="bare")).model == "bare"


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"modle": "x"}, "unknown key 'modle'; known keys: model, description"),
        ({"defaults": {"seed": 1}}, "defaults.seed cannot be set, it comes from the request"),
        ({"defaults": {"steps": "4"}}, "defaults: ${steps} must be a whole number, got '4'"),
        ({"size_multiple": 0}, "size_multiple must be a whole number of 1 or more"),
        (
            {"files": [{"repository": "a/b"}]},
            "each entry of files needs repository, path and folder",
        ),
    ],
)
def test_bad_workflow_data_is_reported(tmp_path, meta, message):
    with pytest.raises(WorkflowError) as info:
        workflows.load(custom(tmp_path, image_graph(), meta=meta))
    assert message in str(info.value) and "mine.meta.json" in str(info.value)


@pytest.mark.parametrize(
    ("size", "multiple", "expected"),
    [(1024, 16, 1024), (1000, 16, 1008), (1001, 16, 1008), (7, 16, 16), (1000, 1, 1000)],
)
def test_sizes_round_to_the_nearest_multiple(size, multiple, expected):
    assert fit(size, multiple) == expected


def test_output_node_must_not_be_a_websocket_node(tmp_path):
    graph = image_graph()
    graph["3"] = {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}
    with pytest.raises(WorkflowError) as info:
        workflows.load(custom(tmp_path, graph), output_node="3")
    assert str(info.value).startswith(
        "output_node '3' of workflow mine is a SaveImageWebsocket node, which only streams"
    )


def test_config_validate_reads_the_workflows(tmp_path, isolated_env, capsys):
    from imagen_core.cli import main
    from tests.helpers import write_config

    only_ws = image_graph()
    only_ws["2"] = {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}
    no_output = {"1": image_graph()["1"]}
    both = image_graph()
    both["3"] = {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}
    path = write_config(
        isolated_env,
        "backends:\n"
        f"  missing: {{type: comfyui, workflow: {tmp_path}/nope.json}}\n"
        f"  ws: {{type: comfyui, workflow: {custom(tmp_path, only_ws, 'ws')}}}\n"
        f"  none: {{type: comfyui, workflow: {custom(tmp_path, no_output, 'none')}}}\n"
        f"  wsnode: {{type: comfyui, workflow: {custom(tmp_path, both, 'both')}, output_node: '3'}}\n"
        f"  fine: {{type: comfyui, workflow: {tmp_path}/both.json}}\n"
        "  bundled: {type: comfyui, workflow: flux1-schnell}\n",
    )
    with pytest.raises(SystemExit) as info:
        main(["config", "validate"])
    err = capsys.readouterr().err.splitlines()
    assert info.value.code == 1
    assert (
        err[0]
        == f"imagen: backends.missing: workflow file {tmp_path}/nope.json does not exist ({path}:2:12)"
    )
    assert err[1].startswith(
        "imagen: backends.ws: workflow ws has no image-output node that ComfyUI keeps"
    )
    assert err[2].startswith(
        "imagen: backends.none: workflow none has no image-output node (SaveImage"
    )
    assert err[3].startswith(
        "imagen: backends.wsnode: output_node '3' of workflow both is a SaveImageWebsocket"
    )
    assert err[4] == f"{path}: 4 problem(s)"
    # Other commands do not read workflow files: one missing file blocks no other backend.
    with pytest.raises(SystemExit) as info:
        main(["backends"])
    assert info.value.code == 0
