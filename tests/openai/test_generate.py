"""One image from request to Result, against the fake OpenAI: the exact body sent,
sizes mapped to the model's own, what a model cannot take warned about, the
answer read (base64, DALL-E URLs), the seed, the sidecar and the cost."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from imagen_core import Request, Session
from imagen_core.cli import main
from tests.fake_http import Steps


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_gpt_image_sends_exactly_one_json_request(fake, make_backend):
    steps = Steps()
    result = make_backend(model="gpt-image-1", quality="low").generate(
        Request("a red fox", width=1024, height=1024), steps
    )
    (sent,) = fake.requests
    assert repr(sent) == "POST /v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {fake.key}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"].startswith("imagen-openai")
    # No response_format: the GPT image models refuse it ("Unknown parameter").
    assert sent.json == {
        "model": "gpt-image-1",
        "prompt": "a red fox",
        "size": "1024x1024",
        "quality": "low",
    }
    assert result.image.startswith(b"\x89PNG") and size_of(result.image) == (1024, 1024)
    assert result.mime_type == "image/png"
    assert result.model == "gpt-image-1"
    assert result.seed == 0  # OpenAI's models take no seed
    assert steps.calls == [(0, 0, "generating"), (1, 1, "done")]
    meta = result.metadata
    assert meta["request_id"].startswith("req_") and len(meta["request_id"]) == 36
    assert meta["size_sent"] == "1024x1024" and meta["quality"] == "low"
    assert meta["sent"] == {"model": "gpt-image-1", "size": "1024x1024", "quality": "low"}
    assert meta["usage"]["output_tokens"] == 272
    text_tokens = meta["usage"]["input_tokens_details"]["text_tokens"]
    # usage x the table: text $5/1M, output $40/1M.
    assert result.cost_usd == pytest.approx(round((text_tokens * 5 + 272 * 40) / 1e6, 6))
    assert result.cost_basis == "computed"  # the table times the usage reported
    assert meta["cost_basis"].startswith(
        f"usage: {text_tokens} text + 0 image input tokens, 272 output tokens at 5/10/40 USD "
        "per 1M (models.json, price of 2025-05, https://openai.com/api/pricing)"
    )


def test_block_options_are_sent_and_the_answer_format_is_read(fake, make_backend):
    result = make_backend(
        model="gpt-image-1.5",
        quality="high",
        background="transparent",
        output_format="webp",
        moderation="low",
    ).generate(Request("a glass", width=1024, height=1536), Steps())
    assert fake.generations[0].json == {
        "model": "gpt-image-1.5",
        "prompt": "a glass",
        "size": "1024x1536",
        "quality": "high",
        "background": "transparent",
        "output_format": "webp",
        "moderation": "low",
    }
    assert result.mime_type == "image/webp" and result.image[:4] == b"RIFF"
    assert result.metadata["background"] == "transparent"
    usage = result.metadata["usage"]
    assert usage["output_tokens"] == 6240
    text = usage["input_tokens_details"]["text_tokens"]
    assert result.cost_usd == pytest.approx(round((text * 8 + 6240 * 32) / 1e6, 6))


@pytest.mark.parametrize(
    ("model", "asked", "sent"),
    [
        ("gpt-image-1", (1920, 1080), "1536x1024"),
        ("gpt-image-1", (800, 1200), "1024x1536"),
        ("gpt-image-1", (512, 512), "1024x1024"),
        ("dall-e-3", (1920, 1080), "1792x1024"),
        ("dall-e-3", (1000, 1000), "1024x1024"),
        ("dall-e-2", (600, 600), "512x512"),
        ("dall-e-2", (300, 200), "256x256"),
    ],
)
def test_a_size_the_model_lacks_maps_to_the_nearest_with_a_warning(
    fake, make_backend, capsys, model, asked, sent
):
    result = make_backend(model=model).generate(
        Request("x", width=asked[0], height=asked[1]), Steps()
    )
    assert fake.generations[0].json["size"] == sent
    assert size_of(result.image) == tuple(int(v) for v in sent.split("x"))
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"imagen: openai: {model} makes ")
    assert line.endswith(f": {asked[0]}x{asked[1]} is sent as {sent}")


def test_the_sidecar_records_the_size_made_not_the_size_asked(
    capsys, fake, fake_time, key, configure, output_dir
):
    configure(model="gpt-image-1")
    with pytest.raises(SystemExit) as info:
        main(["generate", "a wide harbour", "--size", "1920x1080"])
    out, err = capsys.readouterr()
    assert info.value.code == 0
    assert err == (
        "imagen: openai: gpt-image-1 makes 1024x1024, 1536x1024, 1024x1536: 1920x1080 is sent "
        "as 1536x1024\n"
    )
    path = Path(out.strip())
    assert path.suffix == ".png" and size_of(path.read_bytes()) == (1536, 1024)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert (sidecar["width"], sidecar["height"]) == (1536, 1024)
    assert (sidecar["request"]["width"], sidecar["request"]["height"]) == (1920, 1080)
    assert sidecar["metadata"]["size_sent"] == "1536x1024"
    assert sidecar["cost_usd"] > 0


def test_what_the_model_cannot_take_is_warned_never_dropped_silently(fake, make_backend, capsys):
    result = make_backend(model="gpt-image-1").generate(
        Request("x", seed=7, steps=30, negative="blur", extra={"cfg": 4.5}), Steps()
    )
    sent = fake.generations[0].json
    assert set(sent) == {"model", "prompt", "size"}
    assert result.seed == 0
    assert capsys.readouterr().err.splitlines() == [
        f"imagen: openai: gpt-image-1 takes no {name}: {shown} is not sent (for a server that "
        f"takes it, map it with request_fields: {{{name}: FIELD}} in the backend's block)"
        for name, shown in [
            ("seed", "--seed 7"),
            ("steps", "--steps 30"),
            ("negative", "--negative"),
            ("cfg", "cfg"),
        ]
    ]


def test_request_fields_send_them_to_a_compatible_server(fake, make_backend, capsys):
    fake.key, fake.compatible = None, True  # a local server: no key, fields of its own
    backend = make_backend(
        model="flux-schnell-local",
        api_key_env=None,
        request_fields={"seed": "seed", "steps": "steps", "negative": "negative_prompt"},
        extra_body={"guidance": 3.5, "response_format": None},
    )
    result = backend.generate(Request("x", seed=7, steps=30, negative="blur"), Steps())
    sent = fake.generations[0]
    assert "authorization" not in sent.headers
    # A model the table does not know: the size as asked, no OpenAI-only options.
    assert sent.json == {
        "model": "flux-schnell-local",
        "prompt": "x",
        "size": "1024x1024",
        "seed": 7,
        "steps": 30,
        "negative_prompt": "blur",
        "guidance": 3.5,
    }
    assert result.seed == 7 and result.cost_usd is None and result.cost_basis is None
    assert result.metadata["cost_basis"] == "no price known"
    assert capsys.readouterr().err == ""  # nothing dropped, no price expected


def test_seed_zero_is_picked_sent_and_reported_when_the_server_takes_one(fake, make_backend):
    fake.key, fake.compatible = None, True
    backend = make_backend(model="sd-cpp-local", api_key_env=None, request_fields={"seed": "seed"})
    result = backend.generate(Request("x", width=640, height=480), Steps())
    sent = fake.generations[0].json
    assert 1 <= sent["seed"] < 2**31 and result.seed == sent["seed"]
    assert sent["size"] == "640x480" and size_of(result.image) == (640, 480)
    assert sent["response_format"] == "b64_json"  # unknown models are asked for base64


def test_extra_body_sets_the_seed_reported(fake, make_backend):
    fake.key, fake.compatible = None, True
    backend = make_backend(
        model="m", api_key_env=None, request_fields={"seed": "seed"}, extra_body={"seed": 99}
    )
    assert backend.generate(Request("x", seed=5), Steps()).seed == 99
    assert fake.generations[0].json["seed"] == 99


def test_dall_e_3_answers_in_base64_with_its_revised_prompt_and_price(fake, make_backend):
    result = make_backend(model="dall-e-3", quality="hd").generate(
        Request("a cat", width=1024, height=1792), Steps()
    )
    assert fake.generations[0].json == {
        "model": "dall-e-3",
        "prompt": "a cat",
        "size": "1024x1792",
        "quality": "hd",
        "response_format": "b64_json",
    }
    assert fake.downloads == []
    assert size_of(result.image) == (1024, 1792)
    assert result.metadata["revised_prompt"] == "A detailed rendering of a cat"
    assert result.cost_usd == 0.12
    assert result.metadata["cost_basis"] == (
        "0.12 USD per hd 1024x1792 image (models.json, price of 2025, "
        "https://openai.com/api/pricing)"
    )


def test_a_url_answer_is_downloaded_at_once_without_the_key(fake, make_backend):
    # response_format removed: DALL-E answers with a URL on its storage host.
    result = make_backend(model="dall-e-2", extra_body={"response_format": None}).generate(
        Request("a cat", width=256, height=256), Steps()
    )
    assert "response_format" not in fake.generations[0].json
    (download,) = fake.downloads
    assert download.path.startswith("/files/img-") and "sig=" in download.path
    assert result.image.startswith(b"\x89PNG") and size_of(result.image) == (256, 256)
    assert result.cost_usd == 0.016


def test_a_data_url_in_b64_json_is_read(fake, make_backend):
    fake.answer_format = "data-url"
    result = make_backend(model="gpt-image-1").generate(Request("x"), Steps())
    assert result.image.startswith(b"\x89PNG")


def test_the_bytes_decide_the_type(fake, make_backend):
    result = make_backend(model="gpt-image-1", output_format="jpeg").generate(Request("x"), Steps())
    assert result.mime_type == "image/jpeg" and result.extension == "jpg"


def test_a_long_prompt_is_refused_before_anything_is_sent(fake, make_backend):
    from imagen_core import UsageError

    with pytest.raises(UsageError) as info:
        make_backend(model="dall-e-2").generate(Request("x" * 1001), Steps())
    assert str(info.value) == (
        "openai: the prompt is 1001 characters; dall-e-2 takes at most 1000: shorten it"
    )
    assert fake.requests == []


def test_a_session_writes_the_image_and_its_sidecar(fake, fake_time, key, configure, output_dir):
    configure(model="gpt-image-1", extra="quality: medium")
    generation = Session().generate(Request("a lighthouse", backend="oa"))
    assert generation.ok and generation.path is not None
    sidecar = json.loads(generation.sidecar.read_text())
    assert sidecar["backend"] == {"name": "oa", "type": "openai"}
    assert sidecar["metadata"]["usage"]["output_tokens"] == 1056
    assert fake.key not in generation.sidecar.read_text()


def test_another_imagen_reports_the_seed_it_used_and_its_cost(fake, make_backend):
    fake.key, fake.compatible, fake.imagen_report = None, True, True
    backend = make_backend(model="flux-schnell-local", api_key_env=None)
    result = backend.generate(Request("x"), Steps())
    assert "seed" not in fake.generations[0].json  # not mapped: the server picks
    assert result.seed == 4242 and result.cost_usd == 0.003
    assert result.cost_basis == "billed"  # as the other imagen reported it
    assert result.metadata["remote"]["backend"] == "flux-schnell-local"
    assert result.metadata["cost_basis"] == "reported by the remote imagen"


def test_compare_runs_it_beside_a_local_backend(fake, fake_time, key, configure, capsys):
    from imagen_core import compare
    from imagen_core.comparison import device_of

    configure(model="dall-e-2")
    result = compare(Request("a fox", width=256, height=256), ["oa", "mock"], parallel=True)
    assert [o.ok for o in result.outcomes] == [True, True], [o.error for o in result.outcomes]
    assert device_of(Session(), "oa") is None  # no device: it runs beside the others
    assert fake.generations[0].json["size"] == "256x256"
    assert result.outcomes[0].generation.result.cost_usd == 0.016


def test_the_type_works_by_name_with_its_defaults(isolated_env):
    # No block at all: `--backend openai` is gpt-image-1 on api.openai.com.
    instance, backend = Session().backend("openai")
    assert instance.type == "openai"
    assert backend.config.model == "gpt-image-1"
    assert backend.config.base_url == "https://api.openai.com/v1"
    assert backend.service == "OpenAI"


def test_dry_run_and_max_cost_use_the_estimate_and_send_nothing(
    capsys, fake, fake_time, key, configure, output_dir
):
    configure(model="dall-e-3", extra="quality: hd")
    with pytest.raises(SystemExit) as info:
        main(["generate", "a fox", "--size", "1792x1024", "--dry-run"])
    out, _ = capsys.readouterr()
    assert info.value.code == 0
    lines = out.splitlines()
    assert lines[0] == "dry run: nothing was generated"
    assert lines[1].split()[:5] == ["oa", "dall-e-3", "$0.12", "per", "image"]
    assert "(models.json, price of 2025, https://openai.com/api/pricing)" in lines[1]
    with pytest.raises(SystemExit) as info:
        main(["generate", "a fox", "--size", "1792x1024", "--max-cost", "0.10"])
    _, err = capsys.readouterr()
    assert info.value.code == 2 and "$0.1200" in err
    assert fake.requests == []
    assert not output_dir.exists() or not any(output_dir.rglob("*.*"))
