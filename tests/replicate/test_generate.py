"""A prediction from create to image, against the fake Replicate: the exact requests
sent, sync mode, polling, the output shapes, seeds, the model families' inputs,
metadata and cost."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from imagen_core import Request, Session, compare, generate
from imagen_core.cli import main
from imagen_core.comparison import device_of
from imagen_replicate.pricing import parse
from tests.replicate.conftest import Steps
from tests.replicate.fake_replicate import COMMUNITY_VERSION

SCHNELL = "/v1/models/black-forest-labs/flux-schnell/predictions"


def test_sync_mode_success_sends_exactly_one_create_and_one_download(fake, make_backend):
    backend = make_backend(model="black-forest-labs/flux-schnell")
    result = backend.generate(Request("a red fox", seed=42), Steps())

    assert [repr(r) for r in fake.requests] == [
        f"POST {SCHNELL}",
        f"GET /files/{_pid(result)}/out-0.webp",
    ]
    create = fake.requests[0]
    assert create.headers["authorization"] == f"Bearer {fake.token}"
    assert create.headers["prefer"] == "wait=60"
    assert create.headers["content-type"] == "application/json"
    assert create.headers["cancel-after"] == "6m"  # timeout 300 s, rounded up, plus a minute
    assert create.headers["user-agent"].startswith("imagen-replicate")
    assert create.json == {
        "input": {"prompt": "a red fox", "seed": 42, "aspect_ratio": "1:1", "megapixels": "1"}
    }
    # The download goes to Replicate's own file host: the token goes along.
    assert fake.downloads[0].headers["authorization"] == f"Bearer {fake.token}"

    served, kind = fake.image(fake.predictions[_pid(result)], "out-0.webp")
    assert result.image == served and result.mime_type == kind == "image/webp"
    assert result.seed == 42
    assert result.model == "black-forest-labs/flux-schnell"
    assert result.cost_usd == 0.003
    assert result.metadata == {
        "prediction_id": _pid(result),
        "prediction_url": f"https://replicate.com/p/{_pid(result)}",
        "status": "succeeded",
        "model": "black-forest-labs/flux-schnell",
        "version": "f2ab8a5b" + "0" * 56,
        "family": "flux-schnell",
        "outputs": [f"{fake.url}/files/{_pid(result)}/out-0.webp"],
        "predict_time_s": 1.5,
        "input": {"seed": 42, "aspect_ratio": "1:1", "megapixels": "1"},
        "cost_basis": "0.003 USD per image x 1 (price of 2026-05, "
        "https://replicate.com/black-forest-labs/flux-schnell)",
    }


def test_wait_s_and_timeout_shape_the_create_headers(fake, make_backend):
    make_backend(wait_s=5, timeout_s=45.0).generate(Request("x", seed=1), Steps())
    assert fake.creates[0].headers["prefer"] == "wait=5"
    assert fake.creates[0].headers["cancel-after"] == "2m"
    # Replicate cannot hold the call longer than the whole timeout.
    make_backend(wait_s=60, timeout_s=2.5).generate(Request("x", seed=1), Steps())
    assert fake.creates[1].headers["prefer"] == "wait=2"


def test_sync_answer_processing_with_output_downloads_at_once_then_gets_metrics(
    fake, fake_time, make_backend
):
    # Replicate answers file outputs as soon as they exist, status still "processing",
    # without metrics: download first, then GET for predict_time.
    fake.sync = "processing"
    fake.polls_to_finish = 1
    result = make_backend().generate(Request("x", seed=3), Steps())
    pid = _pid(result)
    assert [repr(r) for r in fake.requests] == [
        f"POST {SCHNELL}",
        f"GET /files/{pid}/out-0.webp",
        f"GET /v1/predictions/{pid}",
    ]
    assert result.metadata["status"] == "succeeded"
    assert result.metadata["predict_time_s"] == 1.5
    assert fake_time.sleeps == [0.5]


def test_settling_is_bounded_and_never_loses_the_image(fake, fake_time, make_backend):
    fake.sync = "processing"
    fake.outcome = "running"  # never final after the output appeared
    result = make_backend().generate(Request("x", seed=3), Steps())
    assert result.image and result.metadata["status"] == "processing"
    assert result.metadata["predict_time_s"] is None
    assert sum(fake_time.sleeps) == pytest.approx(10.0)  # Pacing.settle_s
    assert fake.cancels == []  # its output is made: nothing to save by cancelling


def test_not_final_in_time_is_polled_with_gentle_backoff(fake, fake_time, make_backend):
    fake.sync = "starting"
    fake.polls_to_finish = 5
    steps = Steps()
    result = make_backend().generate(Request("x", seed=3), steps)
    pid = _pid(result)
    assert [repr(r) for r in fake.polls] == [f"GET /v1/predictions/{pid}"] * 5
    assert fake_time.sleeps == [0.5, 0.75, 1.125, 1.6875, 2.53125]
    for poll in fake.polls:
        assert poll.headers["authorization"] == f"Bearer {fake.token}"
        assert poll.body == b""
    # Progress: the phases, then the model's own tqdm bar read from the logs.
    assert steps.calls[0] == (0, 0, "creating the prediction")
    assert (0, 0, "starting") in steps.calls
    assert (1, 5, "processing") in steps.calls and (4, 5, "processing") in steps.calls
    assert steps.calls[-1] == (1, 1, "succeeded")


def test_poll_interval_is_capped(fake_time):
    from imagen_replicate.pacing import Pacing

    delays = Pacing().poll_delays()
    assert [round(next(delays), 3) for _ in range(9)][-3:] == [5.0, 5.0, 5.0]


def test_metrics_appearing_later_cost_one_more_get(fake, make_backend):
    fake.metrics_after = 1  # the final create answer lacks predict_time
    result = make_backend().generate(Request("x", seed=3), Steps())
    assert [r.method for r in fake.requests] == ["POST", "GET", "GET"]
    assert fake.polls[0].path == f"/v1/predictions/{_pid(result)}"
    assert result.metadata["predict_time_s"] == 1.5


def test_metrics_never_appearing_leave_predict_time_unknown(fake, make_backend):
    fake.metrics_after = 99
    result = make_backend().generate(Request("x", seed=3), Steps())
    assert len(fake.polls) == 1  # once more, not a loop
    assert result.metadata["predict_time_s"] is None
    assert result.cost_usd == 0.003  # priced per image: predict_time is not needed


def test_single_string_output(fake, make_backend):
    result = make_backend(model="stability-ai/stable-diffusion-3.5-large").generate(
        Request("x", seed=5), Steps()
    )
    prediction = fake.predictions[_pid(result)]
    assert isinstance(prediction.data["output"], str)
    assert result.metadata["outputs"] == [prediction.data["output"]]
    assert result.mime_type == "image/webp" and result.cost_usd == 0.065


def test_list_output_downloads_the_first_and_keeps_all(fake, make_backend):
    backend = make_backend(input={"num_outputs": 3, "output_format": "png"})
    result = backend.generate(Request("x", seed=5), Steps())
    pid = _pid(result)
    assert result.metadata["outputs"] == [f"{fake.url}/files/{pid}/out-{i}.png" for i in range(3)]
    assert [r.path for r in fake.downloads] == [f"/files/{pid}/out-0.png"]
    assert result.mime_type == "image/png"
    assert result.cost_usd == pytest.approx(0.009)  # three images at $0.003


def test_data_url_output_needs_no_download(fake, make_backend):
    fake.output_kind = "data"
    result = make_backend(input={"output_format": "jpg"}).generate(Request("x", seed=9), Steps())
    assert fake.downloads == []
    assert result.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(result.image)) as image:
        assert image.format == "JPEG"
    (kept,) = result.metadata["outputs"]
    assert kept.startswith("data:image/jpeg;base64,... (") and len(kept) < 80


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("image/png", "image/png"),  # the header wins over the .webp suffix
        ("image/jpg", "image/jpeg"),  # a common misspelling
        ("binary/octet-stream", "image/webp"),  # no image type: the URL's suffix
    ],
)
def test_mime_type_from_the_download(fake, make_backend, content_type, expected):
    fake.file_content_type = content_type
    result = make_backend().generate(Request("x", seed=9), Steps())
    assert result.mime_type == expected


def test_version_models_use_the_predictions_endpoint(fake, make_backend):
    model = f"someone/sdxl-finetune:{COMMUNITY_VERSION}"
    result = make_backend(model=model, family="sdxl").generate(
        Request("x", width=1000, height=600, seed=4, steps=30, negative="blur"), Steps()
    )
    (create,) = fake.creates
    assert create.path == "/v1/predictions"
    assert create.json == {
        "version": COMMUNITY_VERSION,
        "input": {
            "prompt": "x",
            "seed": 4,
            "width": 1000,
            "height": 600,
            "num_inference_steps": 30,
            "negative_prompt": "blur",
        },
    }
    assert result.model == model and result.metadata["version"] == COMMUNITY_VERSION


def test_per_second_price_uses_predict_time(fake, make_backend):
    prices = parse(
        {
            "models": {
                "someone/sdxl-finetune": {
                    "usd_per_second": 0.001,
                    "date": "2026-01",
                    "source": "https://replicate.com/pricing",
                }
            }
        }
    )
    fake.predict_time = 2.5
    model = f"someone/sdxl-finetune:{COMMUNITY_VERSION}"
    result = make_backend(model=model, prices=prices).generate(Request("x", seed=4), Steps())
    assert result.cost_usd == pytest.approx(0.0025)
    assert result.metadata["cost_basis"].startswith("0.001 USD per second of predict_time")


def test_seed_zero_picks_a_seed_sends_it_and_reports_it(fake, make_backend):
    backend = make_backend()
    first = backend.generate(Request("x"), Steps())
    second = backend.generate(Request("x"), Steps())
    sent = [r.json["input"]["seed"] for r in fake.creates]
    assert sent == [first.seed, second.seed]
    assert all(0 < seed < 2**31 for seed in sent) and sent[0] != sent[1]


def test_the_block_input_is_passed_through_and_wins(fake, make_backend):
    backend = make_backend(
        model="black-forest-labs/flux-dev",
        input={"go_fast": False, "output_format": "png", "aspect_ratio": "16:9", "seed": 1234},
    )
    result = backend.generate(Request("x", seed=5, steps=30, extra={"cfg": 3.5}), Steps())
    assert fake.creates[0].json["input"] == {
        "prompt": "x",
        "seed": 1234,
        "aspect_ratio": "16:9",
        "megapixels": "1",
        "num_inference_steps": 30,
        "guidance": 3.5,
        "go_fast": False,
        "output_format": "png",
    }
    assert result.seed == 1234  # the seed actually sent


def test_sd35_gets_steps_cfg_and_negative_under_its_own_names(fake, make_backend, capsys):
    make_backend(model="stability-ai/stable-diffusion-3.5-large").generate(
        Request(
            "x", negative="blurry", width=1920, height=1080, seed=2, steps=20, extra={"cfg": 4}
        ),
        Steps(),
    )
    assert fake.creates[0].json["input"] == {
        "prompt": "x",
        "seed": 2,
        "aspect_ratio": "16:9",
        "steps": 20,
        "cfg": 4,
        "negative_prompt": "blurry",
    }
    assert capsys.readouterr().err == ""


def test_negative_is_warned_about_once_where_the_model_has_none(fake, make_backend, capsys):
    backend = make_backend()
    backend.generate(Request("x", negative="dogs", seed=1), Steps())
    backend.generate(Request("y", negative="cats", seed=1), Steps())
    assert "negative_prompt" not in fake.creates[0].json["input"]
    err = capsys.readouterr().err
    assert err == (
        "imagen: replicate: black-forest-labs/flux-schnell takes no negative prompt; "
        "it is ignored\n"
    )


def test_a_size_flux_cannot_make_is_sent_as_the_nearest_ratio_with_a_warning(
    fake, make_backend, capsys
):
    make_backend().generate(Request("x", width=1000, height=700, seed=1), Steps())
    sent = fake.creates[0].json["input"]
    assert (sent["aspect_ratio"], sent["megapixels"]) == ("3:2", "1")
    assert capsys.readouterr().err == (
        "imagen: replicate: black-forest-labs/flux-schnell: 1000x700 is sent as aspect_ratio "
        "3:2 and megapixels 1: this model makes 1216x832\n"
    )


def test_flux_pro_takes_custom_sizes_in_multiples_of_32(fake, make_backend):
    make_backend(model="black-forest-labs/flux-1.1-pro").generate(
        Request("x", width=1000, height=700, seed=1), Steps()
    )
    assert fake.creates[0].json["input"] == {
        "prompt": "x",
        "seed": 1,
        "aspect_ratio": "custom",
        "width": 992,
        "height": 704,
    }


def test_unknown_model_gets_prompt_seed_and_input_only(fake, make_backend, capsys, monkeypatch):
    from tests.replicate import fake_replicate

    monkeypatch.setitem(
        fake_replicate.MODELS,
        "someone/new-model",
        fake_replicate.Model("someone/new-model", {"prompt": {"type": "string"}}, "string"),
    )
    result = make_backend(model="someone/new-model", input={"style": "any"}).generate(
        Request("x", seed=8, steps=12, negative="n", width=640, height=480), Steps()
    )
    assert fake.creates[0].json == {"input": {"prompt": "x", "seed": 8, "style": "any"}}
    assert result.cost_usd is None
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "imagen: replicate: someone/new-model is in no known model family, so the request's "
        "steps and negative prompt cannot be sent; set `family:` in the backend's block, or "
        "pass the model's own inputs under `input:`",
        "imagen: replicate: no price known for someone/new-model, so its cost is unknown; add "
        "it to the pricing table (docs/backends.md, section Replicate)",
    ]
    make_backend(model="someone/new-model").generate(Request("x", seed=8), Steps())
    assert capsys.readouterr().err == ""  # each said once


def test_the_backend_has_no_device(make_backend):
    # A cloud API runs beside local backends in `imagen compare --parallel`.
    assert not hasattr(make_backend(), "device")


# ---------------------------------------------------------------- through imagen


def test_through_the_pipeline_the_sidecar_records_the_prediction(
    fake, fake_time, token, configure, output_dir
):
    configure(extra="input: {output_format: png}")
    record = generate(Request("a lighthouse", seed=11, width=512, height=512))
    assert record.path.suffix == ".png" and record.path.parent.parent == output_dir.resolve()
    side = json.loads(record.sidecar.read_text())
    assert side["backend"] == {"name": "rep", "type": "replicate"}
    assert side["model"] == "black-forest-labs/flux-schnell"
    assert side["seed"] == 11 and side["cost_usd"] == 0.003
    assert side["metadata"]["prediction_id"] == _pid(record.result)
    assert side["metadata"]["input"] == {
        "seed": 11,
        "aspect_ratio": "1:1",
        "megapixels": "0.25",
        "output_format": "png",
    }
    assert fake.creates[0].json["input"]["prompt"] == "a lighthouse"


def test_the_cli_generates_with_a_configured_instance(fake, fake_time, token, configure, capsys):
    configure()
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "a", "cat", "--seed", "5", "--backend", "rep"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0, err
    path = Path(out.strip())
    assert path.is_file() and path.name.endswith("-a-cat-5.webp")
    assert err == ""


def test_compare_runs_it_beside_a_local_backend(fake, fake_time, token, configure):
    configure()
    result = compare(Request("a fox", width=64, height=64, seed=21), ["rep", "mock"], parallel=True)
    assert [o.ok for o in result.outcomes] == [True, True], [o.error for o in result.outcomes]
    assert device_of(Session(), "rep") is None  # no device: it runs beside the others
    assert fake.creates[0].json["input"]["seed"] == 21
    assert result.outcomes[0].generation.path.suffix == ".webp"


def test_the_type_works_by_name_with_its_defaults(isolated_env):
    # No block at all: `--backend replicate` is flux-schnell on api.replicate.com.
    instance, backend = Session().backend("replicate")
    assert instance.type == "replicate"
    assert backend.config.model == "black-forest-labs/flux-schnell"
    assert backend.config.base_url == "https://api.replicate.com"


def _pid(result) -> str:
    return result.metadata["prediction_id"]
