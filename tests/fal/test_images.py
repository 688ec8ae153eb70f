"""Image inputs, capabilities and the price before the call: a request with images
goes to the model's editing endpoint as data URIs, one without to its
text-to-image endpoint; what a model cannot take is refused by the core before
anything is sent; estimates come from the price table, with no network."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from imagen_core import (
    BackendError,
    Capabilities,
    Estimate,
    ImageInput,
    Request,
    Session,
    Unsupported,
)
from imagen_core.cli import main
from tests.fal.conftest import Steps, image
from tests.fal.fake_fal import Reply


@pytest.mark.parametrize(
    ("model", "family", "expected"),
    [
        ("fal-ai/flux/schnell", None, Capabilities()),
        ("fal-ai/flux/dev", None, Capabilities(images=1, strength=True)),
        ("fal-ai/flux-pro/kontext", None, Capabilities(images=1)),
        ("fal-ai/flux-pro/kontext/max/text-to-image", None, Capabilities(images=1)),
        ("fal-ai/nano-banana", None, Capabilities(images=10)),
        ("fal-ai/nano-banana/edit", None, Capabilities(images=10)),
        ("fal-ai/bytedance/seedream/v4", None, Capabilities(images=10)),
        ("fal-ai/bytedance/seedream/v4/edit", None, Capabilities(images=10)),
        ("someone/pixel-art", None, Capabilities()),
        ("someone/kontext-lora", "kontext", Capabilities(text_to_image=False, images=1)),
    ],
)
def test_capabilities_per_model(make_backend, model, family, expected):
    assert make_backend(model=model, family=family).capabilities() == expected


def test_kontext_edits_with_the_image_as_a_data_uri(fake, make_backend):
    given = image()
    result = make_backend(model="fal-ai/flux-pro/kontext").generate(
        Request("make it blue", seed=4, inputs=[given], extra={"cfg": 4}), Steps()
    )
    rid = result.metadata["request_id"]
    assert fake.submits[0].path == "/fal-ai/flux-pro/kontext"
    assert fake.submits[0].json == {
        "prompt": "make it blue",
        "seed": 4,
        "guidance_scale": 4,
        "image_url": given.data_uri(),
    }
    assert {p.path for p in fake.polls} == {f"/fal-ai/flux-pro/requests/{rid}/status"}
    assert result.model == "fal-ai/flux-pro/kontext"
    assert result.cost_usd == 0.04
    # The sidecar keeps what was sent, never the image's bytes.
    kept = result.metadata["input"]["image_url"]
    assert kept.startswith("data:image/png;base64,... (") and len(kept) < 80


def test_kontext_without_an_image_runs_its_text_to_image_endpoint(fake, make_backend):
    result = make_backend(model="fal-ai/flux-pro/kontext").generate(
        Request("a cat", seed=4, width=1024, height=576), Steps()
    )
    assert fake.submits[0].path == "/fal-ai/flux-pro/kontext/text-to-image"
    assert fake.submits[0].json == {"prompt": "a cat", "seed": 4, "aspect_ratio": "16:9"}
    assert result.model == "fal-ai/flux-pro/kontext/text-to-image"


def test_nano_banana_takes_the_image_and_references_as_a_list(fake, make_backend):
    first, second = image(), image("reference", color=(0, 0, 255))
    result = make_backend(model="fal-ai/nano-banana").generate(
        Request("put them together", seed=2, inputs=[first, second]), Steps()
    )
    assert fake.submits[0].path == "/fal-ai/nano-banana/edit"
    assert fake.submits[0].json == {
        "prompt": "put them together",
        "seed": 2,
        "image_urls": [first.data_uri(), second.data_uri()],
    }
    assert fake.only().app == "fal-ai/nano-banana"
    assert result.cost_usd == 0.039
    assert [u[:22] for u in result.metadata["input"]["image_urls"]] == [
        "data:image/png;base64,"
    ] * 2


def test_flux_dev_with_an_init_image_is_img2img_with_strength(fake, make_backend):
    init = image(width=64, height=48)
    result = make_backend(model="fal-ai/flux/dev").generate(
        Request("oil painting", seed=9, steps=20, inputs=[init], strength=0.6), Steps()
    )
    assert fake.submits[0].path == "/fal-ai/flux/dev/image-to-image"
    assert fake.submits[0].json == {
        "prompt": "oil painting",
        "seed": 9,
        "num_inference_steps": 20,
        "strength": 0.6,
        "image_url": init.data_uri(),
    }
    assert result.model == "fal-ai/flux/dev/image-to-image"


def test_a_strength_a_text_model_cannot_take_is_refused_by_the_core(fake, key, configure):
    configure(model="fal-ai/nano-banana")
    with pytest.raises(Unsupported, match="strength"):
        Session().generate(Request("x", seed=1, inputs=[image()], strength=0.5))
    assert fake.requests == []


def test_an_edit_only_model_without_an_image_is_refused_before_anything_is_sent(
    capsys, fake, key, configure
):
    # (A listed edit endpoint has a text-to-image sibling; an unlisted one mapped
    # as an editing family has none.)
    configure(model="someone/kontext-lora", extra="family: kontext")
    with pytest.raises(SystemExit) as info:
        main(["generate", "x"])
    _, err = capsys.readouterr()
    assert info.value.code == 2
    assert "an input image" in err and err.count("\n") == 1
    assert fake.requests == []


def test_a_text_model_given_an_image_is_refused_before_anything_is_sent(fake, key, configure):
    configure(model="fal-ai/flux/schnell")
    with pytest.raises(Unsupported, match="input images"):
        Session().generate(Request("x", seed=1, inputs=[image()]))
    assert fake.requests == []


def test_too_many_images_are_refused(fake, key, configure):
    configure(model="fal-ai/flux-pro/kontext")
    with pytest.raises(Unsupported, match="2 input images"):
        Session().generate(Request("x", seed=1, inputs=[image(), image("reference")]))
    assert fake.requests == []


@pytest.mark.parametrize(
    ("model", "request_", "estimate"),
    [
        ("fal-ai/flux/schnell", Request("x"), 0.003),
        ("fal-ai/flux/schnell", Request("x", width=2048, height=2048), 0.012),
        ("fal-ai/flux/schnell", Request("x", width=1024, height=768), 0.003),
        ("fal-ai/flux/dev", Request("x", width=1536, height=1024), 0.05),
        ("fal-ai/flux-pro/kontext", Request("x", inputs=[image()]), 0.04),
        ("fal-ai/flux-pro/kontext/max", Request("x"), 0.08),
        ("fal-ai/nano-banana", Request("x", width=1920, height=1080), 0.039),
        ("fal-ai/bytedance/seedream/v4", Request("x", inputs=[image()]), 0.03),
    ],
)
def test_estimates_come_from_the_price_table_without_network(
    fake, make_backend, monkeypatch, model, request_, estimate
):
    monkeypatch.delenv("FAL_KEY")  # no key needed to price a request
    found = make_backend(model=model).estimate(request_)
    assert found.usd == estimate and found.basis == "computed"
    assert found.source.startswith("pricing.json: price of 20")
    assert fake.requests == []


def test_the_estimate_matches_what_the_result_costs(fake, make_backend):
    backend = make_backend(model="fal-ai/flux/dev")
    request = Request("x", seed=1, width=1536, height=1024)
    assert backend.generate(request, Steps()).cost_usd == backend.estimate(request).usd


def test_unknown_prices_are_unknown_estimates(make_backend):
    assert make_backend(model="someone/pixel-art").estimate(Request("x")) == Estimate(
        source="pricing.json lists no price for someone/pixel-art"
    )
    # img2img has no price in the table: unknown, not guessed.
    found = make_backend(model="fal-ai/flux/dev").estimate(Request("x", inputs=[image()]))
    assert found.usd is None and found.basis == "unknown"
    # A request the model cannot take has no price.
    assert (
        make_backend(model="fal-ai/flux/schnell").estimate(Request("x", inputs=[image()]))
        == Estimate()
    )


def test_an_edit_endpoint_without_an_image_runs_its_text_sibling(fake, make_backend):
    result = make_backend(model="fal-ai/nano-banana/edit").generate(Request("x", seed=1), Steps())
    assert fake.submits[0].path == "/fal-ai/nano-banana"
    assert result.model == "fal-ai/nano-banana"


def test_large_inputs_are_uploaded_to_fals_storage_first(fake, make_backend):
    small = image()
    noise = io.BytesIO()
    Image.frombytes("RGB", (40, 40), random.Random(1).randbytes(40 * 40 * 3)).save(noise, "PNG")
    large = ImageInput.from_bytes(noise.getvalue(), role="reference")
    limit_kb = 1  # the small image is under 1 KB, the large one over it
    assert len(small.data) <= 1024 < len(large.data)
    result = make_backend(model="fal-ai/nano-banana", inline_max_kb=limit_kb).generate(
        Request("x", seed=1, inputs=[small, large]), Steps()
    )
    token, upload = fake.routed("token"), fake.routed("upload")
    assert len(token) == 1 and token[0].query == {"storage_type": ["fal-cdn-v3"]}
    assert token[0].headers["authorization"] == f"Key {fake.key}"
    (sent,) = upload
    assert sent.headers["authorization"] == f"Bearer {fake.cdn_token}"  # never the key
    assert sent.headers["content-type"] == "image/png"
    assert sent.headers["x-fal-file-name"] == f"imagen-input-{large.sha256[:16]}.png"
    assert sent.body == large.data
    (name,) = fake.uploads
    assert fake.submits[0].json["image_urls"] == [
        small.data_uri(),
        f"{fake.url}/files/uploads/{name}",
    ]
    assert result.metadata["input"]["image_urls"][1] == f"{fake.url}/files/uploads/{name}"


def test_a_failed_upload_fails_before_anything_is_queued(fake, fake_time, make_backend):
    fake.fail("upload", *[Reply(503, {"detail": "storage down"})] * 6)
    with pytest.raises(BackendError) as info:
        make_backend(model="fal-ai/flux-pro/kontext", inline_max_kb=0).generate(
            Request("x", seed=1, inputs=[image()]), Steps()
        )
    assert str(info.value).startswith("fal is failing while uploading imagen-input-") and str(
        info.value
    ).endswith(".png to fal's storage (HTTP 503: storage down); try again later")
    assert fake.submits == []
