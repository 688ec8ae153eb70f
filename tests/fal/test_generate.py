"""A request from submit to image, against the fake fal queue: the exact requests
sent, the status walk and its progress, seeds, the families' inputs, metadata and
cost, and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagen_core import Request, Session, compare, generate
from imagen_core.cli import main
from imagen_core.comparison import device_of
from tests.fal.conftest import Steps
from tests.helpers import without_provenance


def _rid(result) -> str:
    return result.metadata["request_id"]


def test_a_request_walks_the_queue_and_sends_exactly_what_fal_expects(
    fake, fake_time, make_backend
):
    steps = Steps()
    result = make_backend(model="fal-ai/flux/schnell").generate(
        Request("a red fox", seed=42), steps
    )
    rid = _rid(result)
    assert [repr(r) for r in fake.requests] == [
        "POST /fal-ai/flux/schnell",
        f"GET /fal-ai/flux/requests/{rid}/status",  # IN_QUEUE
        f"GET /fal-ai/flux/requests/{rid}/status",  # IN_PROGRESS 1/2
        f"GET /fal-ai/flux/requests/{rid}/status",  # IN_PROGRESS 2/2
        f"GET /fal-ai/flux/requests/{rid}/status",  # COMPLETED
        f"GET /fal-ai/flux/requests/{rid}",
        f"GET /files/{rid}/out-0.jpg",
    ]
    submit = fake.submits[0]
    assert submit.headers["authorization"] == f"Key {fake.key}"
    assert submit.headers["content-type"] == "application/json"
    assert submit.headers["x-fal-request-timeout"] == "300"
    assert submit.headers["user-agent"].startswith("imagen-fal")
    assert submit.json == {"prompt": "a red fox", "seed": 42, "image_size": "square_hd"}
    for poll in fake.polls:
        assert poll.query == {"logs": ["1"]}
        assert poll.headers["authorization"] == f"Key {fake.key}"
    # The file CDN never gets the key.
    assert "authorization" not in fake.downloads[0].headers
    assert fake_time.sleeps == [0.5, 0.75, 1.125]

    served, kind = fake.image(fake.only(), "out-0.jpg")
    assert result.image == served and result.mime_type == kind == "image/jpeg"
    assert result.seed == 42
    assert result.model == "fal-ai/flux/schnell"
    assert result.cost_usd == 0.003  # 1024x1024 is one megapixel
    assert result.metadata == {
        "request_id": rid,
        "endpoint": "fal-ai/flux/schnell",
        "family": "flux-schnell",
        "status": "COMPLETED",
        "outputs": [f"{fake.url}/files/{rid}/out-0.jpg"],
        "inference_time_s": 1.25,
        "input": {"seed": 42, "image_size": "square_hd"},
        "cost_basis": "0.003 USD per megapixel x 1 MP (price of 2026-05, "
        "https://fal.ai/models/fal-ai/flux/schnell)",
        "has_nsfw_concepts": [False],
    }
    # Progress: the queue position, then the model's own tqdm bar read from the logs.
    assert steps.calls[:3] == [
        (0, 0, "submitting"),
        (0, 0, "in queue, position 2"),
        (0, 0, "in queue, position 1"),
    ]
    assert (1, 2, "running") in steps.calls and (2, 2, "running") in steps.calls
    assert steps.calls[-1] == (1, 1, "completed")


def test_the_subpath_is_used_on_submit_only(fake, make_backend):
    result = make_backend(model="fal-ai/flux/dev").generate(Request("x", seed=1, steps=20), Steps())
    rid = _rid(result)
    assert fake.submits[0].path == "/fal-ai/flux/dev"
    assert {r.path for r in fake.polls} == {f"/fal-ai/flux/requests/{rid}/status"}
    assert fake.submits[0].json == {
        "prompt": "x",
        "seed": 1,
        "image_size": "square_hd",
        "num_inference_steps": 20,
    }
    assert result.cost_usd == 0.025


def test_seed_zero_is_picked_sent_and_reported(fake, make_backend):
    result = make_backend().generate(Request("x"), Steps())
    sent = fake.submits[0].json["seed"]
    assert 0 < sent < 2**31
    assert result.seed == sent


def test_the_seed_fal_reports_wins(fake, make_backend, monkeypatch):
    # nano-banana's output has no seed: the one sent is reported.
    result = make_backend(model="fal-ai/nano-banana").generate(Request("x", seed=5), Steps())
    assert result.seed == 5
    # A model may report another seed than it was given: that one made the image.
    original = fake._output

    def reseeded(queued):
        output = original(queued)
        output["seed"] = 77
        return output

    monkeypatch.setattr(fake, "_output", reseeded)
    assert (
        make_backend(model="fal-ai/bytedance/seedream/v4")
        .generate(Request("x", seed=5), Steps())
        .seed
        == 77
    )


@pytest.mark.parametrize(
    ("size", "sent", "cost"),
    [
        ((1024, 1024), "square_hd", 0.003),
        ((512, 512), "square", 0.003),
        ((1024, 576), "landscape_16_9", 0.003),
        ((768, 1024), "portrait_4_3", 0.003),
        ((1536, 1024), {"width": 1536, "height": 1024}, 0.006),  # 1.5 MP, billed as 2
    ],
)
def test_sizes_go_as_presets_or_width_and_height(fake, make_backend, size, sent, cost):
    result = make_backend().generate(Request("x", seed=1, width=size[0], height=size[1]), Steps())
    assert fake.submits[0].json["image_size"] == sent
    assert result.cost_usd == cost


def test_an_aspect_ratio_model_gets_the_nearest_ratio_with_a_warning(fake, make_backend, capsys):
    result = make_backend(model="fal-ai/nano-banana").generate(
        Request("x", seed=1, width=1000, height=600), Steps()
    )
    assert fake.submits[0].json == {"prompt": "x", "seed": 1, "aspect_ratio": "16:9"}
    assert capsys.readouterr().err == (
        "imagen: fal: fal-ai/nano-banana: 1000x600 is sent as aspect_ratio 16:9, the nearest "
        "this model takes\n"
    )
    assert result.cost_usd == 0.039  # per image
    assert result.metadata["description"] == ""


def test_seedream_is_a_pair_of_endpoints_and_sizes_are_kept_in_its_range(
    fake, make_backend, capsys
):
    backend = make_backend(model="fal-ai/bytedance/seedream/v4")
    result = backend.generate(Request("x", seed=1, width=512, height=512), Steps())
    assert fake.submits[0].path == "/fal-ai/bytedance/seedream/v4/text-to-image"
    assert fake.submits[0].json["image_size"] == "square"  # a preset is sent as it is
    backend.generate(Request("x", seed=1, width=640, height=480), Steps())
    assert fake.submits[1].json["image_size"] == {"width": 1109, "height": 832}
    assert "640x480 is sent as 1109x832 (921600-16777216 pixels in all)" in capsys.readouterr().err
    assert result.model == "fal-ai/bytedance/seedream/v4/text-to-image"
    assert result.cost_usd == 0.03


def test_steps_guidance_and_negative_go_where_the_family_takes_them(fake, make_backend):
    make_backend(model="fal-ai/fast-sdxl").generate(
        Request("x", seed=1, steps=30, negative="blurry", extra={"cfg": 7.5}), Steps()
    )
    assert fake.submits[0].json == {
        "prompt": "x",
        "seed": 1,
        "image_size": "square_hd",
        "num_inference_steps": 30,
        "guidance_scale": 7.5,
        "negative_prompt": "blurry",
    }


def test_what_a_model_cannot_take_is_warned_never_silently_dropped(fake, make_backend, capsys):
    make_backend(model="fal-ai/flux/schnell").generate(
        Request("x", seed=1, steps=4, negative="blurry", extra={"cfg": 3}), Steps()
    )
    assert fake.submits[0].json == {
        "prompt": "x",
        "seed": 1,
        "image_size": "square_hd",
        "num_inference_steps": 4,
    }
    assert capsys.readouterr().err == (
        "imagen: fal: fal-ai/flux/schnell takes no cfg; it is ignored\n"
        "imagen: fal: fal-ai/flux/schnell takes no negative prompt; it is ignored\n"
    )


def test_an_unlisted_endpoint_gets_prompt_seed_and_extra(fake, make_backend, capsys):
    result = make_backend(model="someone/pixel-art", extra={"palette": "gameboy"}).generate(
        Request("x", seed=3, steps=9), Steps()
    )
    assert fake.submits[0].json == {"prompt": "x", "seed": 3, "palette": "gameboy"}
    assert capsys.readouterr().err.startswith(
        "imagen: fal: someone/pixel-art is in no known model family, so the request's steps "
        "cannot be sent; set `family:` in the backend's block"
    )
    assert result.cost_usd is None and result.metadata["cost_basis"] == "no price known"


def test_family_maps_an_unlisted_endpoint(fake, make_backend):
    make_backend(model="someone/pixel-art", family="sdxl").generate(
        Request("x", seed=3, steps=9, negative="text"), Steps()
    )
    assert fake.submits[0].json == {
        "prompt": "x",
        "seed": 3,
        "image_size": "square_hd",
        "num_inference_steps": 9,
        "negative_prompt": "text",
    }


def test_extra_wins_over_mapped_values(fake, make_backend):
    result = make_backend(extra={"seed": 99, "output_format": "png", "num_images": 2}).generate(
        Request("x", seed=1), Steps()
    )
    assert fake.submits[0].json["seed"] == 99 and result.seed == 99
    assert result.mime_type == "image/png"
    # Two images made, two paid for: the first is kept.
    assert result.cost_usd == 0.006
    assert len(result.metadata["outputs"]) == 2


def test_sync_mode_outputs_come_as_data_uris(fake, make_backend):
    result = make_backend(extra={"sync_mode": True}).generate(Request("x", seed=1), Steps())
    assert fake.downloads == []
    assert result.image == fake.image(fake.only(), "out-0.jpg")[0]
    assert result.metadata["outputs"][0].startswith("data:image/jpeg;base64,... (")


def test_sizes_missing_from_the_output_are_read_from_the_image(fake, make_backend):
    fake.omit_sizes = True
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert result.cost_usd == 0.003  # the 16x16 image: one (rounded-up) megapixel


def test_a_flagged_image_is_warned_about(fake, make_backend, capsys):
    fake.nsfw = True
    result = make_backend().generate(Request("x", seed=1), Steps())
    assert result.metadata["has_nsfw_concepts"] == [True]
    assert "safety checker flagged the image" in capsys.readouterr().err


def test_generate_through_the_cli_writes_the_image_and_sidecar(
    capsys, fake, fake_time, key, configure, output_dir
):
    configure()
    with pytest.raises(SystemExit) as info:
        main(["generate", "a lighthouse", "--seed", "7"])
    out, err = capsys.readouterr()
    assert info.value.code == 0
    path = Path(out.strip())
    assert path.is_relative_to(output_dir) and path.suffix == ".jpg"
    served = fake.image(fake.only(), "out-0.jpg")[0]
    assert without_provenance(path.read_bytes()) == without_provenance(served)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["seed"] == 7
    assert fake.key not in path.with_suffix(".json").read_text()
    assert err == ""


def test_through_the_pipeline_the_sidecar_records_the_request(
    fake, fake_time, key, configure, output_dir
):
    configure(extra="timeout_s: 60\nextra: {output_format: png}")
    record = generate(Request("a lighthouse", seed=11, width=512, height=512))
    assert record.path.suffix == ".png" and record.path.parent.parent == output_dir.resolve()
    side = json.loads(record.sidecar.read_text())
    assert side["backend"] == {"name": "fal1", "type": "fal"}
    assert side["model"] == "fal-ai/flux/schnell"
    assert side["seed"] == 11 and side["cost_usd"] == 0.003
    assert side["metadata"]["request_id"] == fake.only().id
    assert side["metadata"]["input"] == {"seed": 11, "image_size": "square", "output_format": "png"}
    assert fake.submits[0].json["prompt"] == "a lighthouse"
    assert fake.submits[0].headers["x-fal-request-timeout"] == "60"


def test_compare_runs_it_beside_a_local_backend(fake, fake_time, key, configure):
    configure()
    result = compare(
        Request("a fox", width=64, height=64, seed=21), ["fal1", "mock"], parallel=True
    )
    assert [o.ok for o in result.outcomes] == [True, True], [o.error for o in result.outcomes]
    assert device_of(Session(), "fal1") is None  # no device: it runs beside the others
    assert fake.submits[0].json["seed"] == 21
    assert fake.submits[0].json["image_size"] == {"width": 64, "height": 64}


def test_the_type_works_by_name_with_its_defaults(isolated_env):
    # No block at all: `--backend fal` is flux-schnell on queue.fal.run.
    instance, backend = Session().backend("fal")
    assert instance.type == "fal"
    assert backend.config.model == "fal-ai/flux/schnell"
    assert backend.config.base_url == "https://queue.fal.run"
