"""Input images on ComfyUI: the upload (named by content, sent once), the
``${image}``/``${image_2}``/``${mask}``/``${denoise}`` placeholders, the
bundled edit, img2img and inpaint workflows run on the fake, and every way
an input cannot be taken."""

from __future__ import annotations

import io

import pytest
import requests

from imagen_comfyui.backend import ComfyUIBackend
from imagen_comfyui.config import ComfyUIConfig
from imagen_comfyui.errors import WorkflowError
from imagen_core import BackendError, ImageInput, Request, Session
from imagen_core.errors import Unsupported
from imagen_core.models import capabilities_of, no_progress
from tests.comfyui.fake_comfyui import FakeComfyUI
from tests.comfyui.test_client import image_graph, write_workflow


def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(buffer, "PNG")
    return buffer.getvalue()


def picture(color: tuple[int, int, int], role: str = "image", **kwargs) -> ImageInput:
    return ImageInput.from_bytes(png(color, **kwargs), role=role)


def half_mask(size: tuple[int, int] = (64, 48)) -> ImageInput:
    """White (repaint) on the right half, black (keep) on the left."""
    from PIL import Image

    mask = Image.new("L", size, 0)
    mask.paste(255, (size[0] // 2, 0, size[0], size[1]))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return ImageInput.from_bytes(buffer.getvalue(), role="mask")


def backend(comfy: FakeComfyUI, workflow: str) -> ComfyUIBackend:
    return ComfyUIBackend(ComfyUIConfig(url=comfy.url, workflow=workflow, timeout_s=20))


def decode(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def mean(image, box=None) -> tuple[float, float, float]:
    from PIL import ImageStat

    region = image.crop(box) if box else image
    red, green, blue = ImageStat.Stat(region).mean
    return red, green, blue


def prompt_graph(comfy: FakeComfyUI, index: int = -1) -> dict:
    return comfy.seen("POST", "/prompt")[index]["body"]["prompt"]


def upload(comfy: FakeComfyUI, data: bytes | None, name: str = "in.png", **fields: str):
    files = {"image": (name, data, "image/png")} if data is not None else None
    return requests.post(f"{comfy.url}/upload/image", files=files, data=fields, timeout=10)


# ------------------------------------------------------- the fake's /upload/image


def test_fake_upload_answers_like_comfyui(comfy):
    red, blue = png((255, 0, 0)), png((0, 0, 255))
    first = upload(comfy, red, type="input", subfolder="imagen")
    assert first.status_code == 200
    assert first.json() == {"name": "in.png", "subfolder": "imagen", "type": "input"}
    assert comfy.files[("input", "imagen", "in.png")] == red
    # The same bytes under the same name: the same file, nothing written.
    again = upload(comfy, red, type="input", subfolder="imagen")
    assert again.json()["name"] == "in.png" and comfy.uploads[-1]["written"] is False
    # Other bytes under the name: renamed, the first file kept.
    other = upload(comfy, blue, type="input", subfolder="imagen")
    assert other.json()["name"] == "in (1).png"
    assert comfy.files[("input", "imagen", "in.png")] == red
    assert upload(comfy, png((0, 255, 0)), subfolder="imagen").json()["name"] == "in (2).png"
    # overwrite=true replaces it; no type is "input", no subfolder the top.
    replaced = upload(comfy, blue, subfolder="imagen", overwrite="true")
    assert replaced.json()["name"] == "in.png"
    assert comfy.files[("input", "imagen", "in.png")] == blue
    assert upload(comfy, red).json() == {"name": "in.png", "subfolder": "", "type": "input"}
    assert ("input", "", "in.png") in comfy.files


@pytest.mark.parametrize(
    ("data", "fields", "status"),
    [
        (None, {"type": "input"}, 400),  # no image part
        (b"x", {"subfolder": "../escape"}, 400),  # outside input/
        (b"x", {"type": "models"}, 500),  # get_dir_by_type has no such folder
    ],
)
def test_fake_upload_refuses_like_comfyui(comfy, data, fields, status):
    assert upload(comfy, data, **fields).status_code == status
    assert not comfy.files


def test_fake_load_image_checks_its_file(comfy):
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "imagen/in.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t"}},
    }
    refused = requests.post(f"{comfy.url}/prompt", json={"prompt": graph}, timeout=10)
    assert refused.status_code == 400
    assert refused.json()["node_errors"]["1"]["errors"] == [
        {
            "type": "custom_validation_failed",
            "message": "Custom validation failed for node",
            "details": "image - Invalid image file: imagen/in.png",
            "extra_info": {"input_name": "image"},
        }
    ]


# ------------------------------------------------------- uploads and placeholders


def test_the_edit_workflow_uploads_the_image_and_loads_it(comfy):
    red = picture((250, 10, 10))
    klein = backend(comfy, "flux2-klein-edit")
    result = klein.generate(Request("make it blue", inputs=[red], seed=7), no_progress)
    (sent,) = comfy.uploads
    assert sent["filename"] == f"{red.sha256}.png" and sent["content_type"] == "image/png"
    assert (sent["type"], sent["subfolder"]) == ("input", "imagen")
    # LoadImage gets exactly what the upload answered: subfolder/name.
    graph = prompt_graph(comfy)
    assert graph["78"]["inputs"]["image"] == f"imagen/{red.sha256}.png"
    assert result.metadata["settings"]["image"] == f"imagen/{red.sha256}.png"
    # The fake renders from the uploaded bytes: a red input makes a reddish
    # image of the input's size scaled to a megapixel (the official graph).
    output = decode(result.image)
    r, g, b = mean(output)
    assert r > 150 > max(g, b)
    assert abs(output.width / output.height - 64 / 48) < 0.01 and output.width > 1000


def test_the_output_depends_on_the_input_bytes(comfy):
    klein = backend(comfy, "flux2-klein-edit")
    outputs = [
        decode(klein.generate(Request("x", inputs=[picture(color)], seed=3), no_progress).image)
        for color in ((250, 10, 10), (10, 10, 250))
    ]
    assert mean(outputs[0])[0] > mean(outputs[1])[0] + 100
    assert mean(outputs[1])[2] > mean(outputs[0])[2] + 100


def test_an_input_is_uploaded_once(comfy):
    red = picture((250, 10, 10))
    klein = backend(comfy, "flux2-klein-edit")
    for seed in (1, 2):
        klein.generate(Request("x", inputs=[red], seed=seed), no_progress)
    assert len(comfy.uploads) == 1 and len(comfy.seen("POST", "/prompt")) == 2
    # Another process (a new client) sends it again, but ComfyUI keeps one file:
    # same name, same bytes.
    backend(comfy, "flux2-klein-edit").generate(Request("x", inputs=[red], seed=3), no_progress)
    assert [u["written"] for u in comfy.uploads] == [True, False]
    assert [key for key in comfy.files if key[0] == "input"] == [
        ("input", "imagen", f"{red.sha256}.png")
    ]


def test_an_input_comfyui_lost_is_uploaded_again(comfy):
    red = picture((250, 10, 10))
    klein = backend(comfy, "flux2-klein-edit")
    klein.generate(Request("x", inputs=[red], seed=1), no_progress)
    comfy.delete_file("input", "imagen", f"{red.sha256}.png")  # someone cleaned input/
    result = klein.generate(Request("x", inputs=[red], seed=2), no_progress)
    assert len(comfy.uploads) == 2 and result.image
    refused, accepted = comfy.seen("POST", "/prompt")[1:]
    assert refused["body"]["prompt"] == accepted["body"]["prompt"]


def test_a_renamed_upload_is_loaded_by_its_new_name(comfy):
    red = picture((250, 10, 10))
    # Another file already has the name: ComfyUI renames ours, and LoadImage must
    # get the name it answered.
    comfy.files[("input", "imagen", f"{red.sha256}.png")] = png((0, 0, 0))
    result = backend(comfy, "flux2-klein-edit").generate(
        Request("x", inputs=[red], seed=1), no_progress
    )
    assert prompt_graph(comfy)["78"]["inputs"]["image"] == f"imagen/{red.sha256} (1).png"
    assert mean(decode(result.image))[0] > 150


def test_references_fill_image_2(comfy):
    red, blue = picture((250, 10, 10)), picture((10, 10, 250), role="reference", size=(32, 32))
    ref = backend(comfy, "flux2-klein-edit-ref")
    ref.generate(Request("x", inputs=[red, blue], seed=1), no_progress)
    graph = prompt_graph(comfy)
    assert graph["78"]["inputs"]["image"] == f"imagen/{red.sha256}.png"
    assert graph["82"]["inputs"]["image"] == f"imagen/{blue.sha256}.png"
    assert [u["filename"] for u in comfy.uploads] == [f"{red.sha256}.png", f"{blue.sha256}.png"]


def test_strength_fills_denoise(comfy):
    init = picture((250, 10, 10))
    img2img = backend(comfy, "sd35-medium-img2img")
    distances = []
    for strength in (None, 0.1, 0.9):
        result = img2img.generate(
            Request("x", inputs=[init], strength=strength, seed=5), no_progress
        )
        denoise = prompt_graph(comfy)["3"]["inputs"]["denoise"]
        assert denoise == (0.8 if strength is None else strength)  # the data's default
        assert result.metadata["settings"]["denoise"] == denoise
        distances.append(250 - mean(decode(result.image))[0])
    # Further from the init image the higher the strength.
    assert distances[1] < distances[0] < distances[2]


def test_the_mask_limits_where_the_inpaint_workflow_paints(comfy):
    image = picture((250, 10, 10))
    result = backend(comfy, "flux1-fill-inpaint").generate(
        Request("a cat", inputs=[image, half_mask()], seed=9), no_progress
    )
    graph = prompt_graph(comfy)
    assert loaders(graph) == {
        "17": f"imagen/{image.sha256}.png",
        "40": f"imagen/{half_mask().sha256}.png",
    }
    output = decode(result.image)
    assert output.size == (64, 48)  # the image's own size
    assert mean(output, (0, 0, 32, 48)) == (250.0, 10.0, 10.0)  # kept: black in the mask
    assert mean(output, (32, 0, 64, 48)) != (250.0, 10.0, 10.0)  # repainted


def loaders(graph: dict) -> dict[str, str]:
    """The file each LoadImage / LoadImageMask node of ``graph`` loads."""
    return {
        node_id: node["inputs"]["image"]
        for node_id, node in graph.items()
        if node["class_type"] in ("LoadImage", "LoadImageMask")
    }


# ------------------------------------------------------------ what is refused


def test_capabilities_come_from_the_placeholders(comfy):
    def caps(workflow):
        return capabilities_of(backend(comfy, workflow)).as_dict()

    assert caps("flux1-schnell") == {
        "text_to_image": True,
        "images": 0,
        "strength": False,
        "mask": False,
    }
    assert caps("flux2-klein-edit-ref") == {
        "text_to_image": False,
        "images": 2,
        "strength": False,
        "mask": False,
    }
    assert caps("sd35-medium-img2img")["strength"] is True
    assert caps("flux1-fill-inpaint")["mask"] is True


@pytest.mark.parametrize(
    ("workflow", "inputs", "strength", "message"),
    [
        (
            "flux1-schnell",
            ["image"],
            None,
            "backend 'comfy' cannot take input images (workflow flux1-schnell has no "
            "${image} placeholder to load one)",
        ),
        (
            "flux2-klein-edit",
            [],
            None,
            "backend 'comfy' cannot take no input image (workflow flux2-klein-edit needs "
            "${image}; give --image)",
        ),
        (
            "flux2-klein-edit-ref",
            ["image"],
            None,
            "backend 'comfy' cannot take only 1 input image (workflow flux2-klein-edit-ref "
            "needs ${image}, ${image_2}; give --image 2 times)",
        ),
        (
            "flux2-klein-edit",
            ["image", "reference"],
            None,
            "backend 'comfy' cannot take 2 input images (workflow flux2-klein-edit loads 1: "
            "${image})",
        ),
        (
            "flux2-klein-edit",
            ["image", "mask"],
            None,
            "backend 'comfy' cannot take a mask (workflow flux2-klein-edit has no ${mask} "
            "placeholder)",
        ),
        (
            "flux1-fill-inpaint",
            ["image"],
            None,
            "backend 'comfy' cannot take no mask (workflow flux1-fill-inpaint needs one for "
            "${mask}; give --mask)",
        ),
        (
            "flux2-klein-edit",
            ["image"],
            0.5,
            "backend 'comfy' cannot take a strength (workflow flux2-klein-edit has no "
            "${denoise} placeholder)",
        ),
        (
            "flux1-schnell",
            [],
            0.5,
            "backend 'comfy' cannot take a strength (workflow flux1-schnell has no ${image} "
            "to start from)",
        ),
    ],
)
def test_the_core_refuses_what_the_workflow_cannot_take(
    comfy, configure, workflow, inputs, strength, message
):
    configure(workflow=workflow)
    given = [half_mask() if role == "mask" else picture((9, 9, 9), role=role) for role in inputs]
    with pytest.raises(Unsupported) as info:
        Session().generate(Request("a cat", inputs=given, strength=strength))
    # What it lacks, naming the placeholders (then maybe the backends that can).
    assert str(info.value).startswith(message)
    # Refused before anything reached ComfyUI.
    assert not comfy.uploads and not comfy.seen("POST", "/prompt")


def test_the_backend_itself_refuses_too(comfy):
    # A library caller that calls the backend directly gets the same answer.
    with pytest.raises(Unsupported, match=r"no input image \(workflow flux2-klein-edit needs"):
        backend(comfy, "flux2-klein-edit").generate(Request("x"), no_progress)
    assert not comfy.uploads


def test_own_workflows_number_their_images_without_gaps(comfy, tmp_path):
    graph = image_graph()
    graph["3"] = {"class_type": "LoadImage", "inputs": {"image": "${image_2}"}}
    with pytest.raises(WorkflowError, match=r"has \$\{image_2\} but no \$\{image\}: number"):
        backend(comfy, write_workflow(tmp_path, graph))
    graph["3"]["inputs"]["image"] = "${mask}"
    with pytest.raises(WorkflowError, match=r"has \$\{mask\} but no \$\{image\}"):
        backend(comfy, write_workflow(tmp_path, graph))


def test_vars_cannot_fill_an_input(comfy):
    with pytest.raises(ValueError, match=r"vars.image: \$\{image\} is filled with an uploaded"):
        ComfyUIConfig(url=comfy.url, vars={"image": "x.png"})


def test_an_upload_over_the_servers_limit_is_named():
    from PIL import Image

    fake = FakeComfyUI()
    fake.max_upload_size = 64 * 1024
    fake.start()
    try:
        buffer = io.BytesIO()
        Image.effect_noise((300, 300), 60).save(buffer, "PNG")  # noise: ~90 kB
        big = ImageInput.from_bytes(buffer.getvalue())
        with pytest.raises(BackendError, match=r"is over the upload limit of ComfyUI at .*"):
            backend(fake, "flux2-klein-edit").generate(Request("x", inputs=[big]), no_progress)
        assert not fake.seen("POST", "/prompt")
    finally:
        fake.stop()


def test_an_upload_answered_with_500_is_sent_again(comfy):
    comfy.script.upload_failures = 2
    red = picture((250, 10, 10))
    result = backend(comfy, "flux2-klein-edit").generate(
        Request("x", inputs=[red], seed=1), no_progress
    )
    assert [u["answer"] for u in comfy.uploads] == [
        500,
        500,
        {"name": f"{red.sha256}.png", "subfolder": "imagen", "type": "input"},
    ]
    assert result.image
    # Three 500s in a row: the upload is given up, nothing is queued.
    comfy.script.upload_failures = 3
    with pytest.raises(BackendError, match=r"answered HTTP 500 to POST /upload/image"):
        backend(comfy, "flux2-klein-edit").generate(
            Request("x", inputs=[picture((1, 2, 3))]), no_progress
        )
    assert len(comfy.seen("POST", "/prompt")) == 1


def test_an_upload_to_a_server_that_is_down(comfy):
    klein = backend(comfy, "flux2-klein-edit")
    comfy.stop()
    with pytest.raises(BackendError, match=r"is not reachable \(is it running\?\)"):
        klein.generate(Request("x", inputs=[picture((1, 2, 3))]), no_progress)


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ({"name": "a.png", "subfolder": "imagen", "type": "input"}, "imagen/a.png"),
        ({"name": "a (1).png", "subfolder": "", "type": "input"}, "a (1).png"),
        ({"name": "a.png", "type": "input"}, "a.png"),  # an older server without it
    ],
)
def test_the_loadimage_value_is_what_the_upload_answered(answer, value):
    from imagen_comfyui.client import ComfyUIClient

    assert ComfyUIClient("http://127.0.0.1:9")._uploaded_as(answer, "x") == value


def test_an_upload_answer_without_a_name_is_an_error():
    from imagen_comfyui.client import ComfyUIClient

    with pytest.raises(BackendError, match=r"answered the upload of x without a file name"):
        ComfyUIClient("http://127.0.0.1:9")._uploaded_as({"subfolder": ""}, "x")
