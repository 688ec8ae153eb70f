"""imagen_core.family_mapping: a request's options under a family's field
names, the ones it has none for named for a warning, said once per process."""

from __future__ import annotations

import pytest

import imagen_core.notices
from imagen_core import Request, UsageError
from imagen_core.family_mapping import check_cfg, put_options, warn_mapping


def test_set_options_go_under_the_familys_names_and_the_rest_are_named():
    request = Request("x", steps=20, negative="blur", strength=0.5, extra={"cfg": 4})
    sent: dict = {"prompt": "x"}
    ignored: list[str] = []
    fields = {"steps": "num_inference_steps", "cfg": None, "negative": None, "strength": "s"}
    put_options(request, fields, sent, ignored)
    assert sent == {"prompt": "x", "num_inference_steps": 20, "s": 0.5}
    assert ignored == ["cfg", "negative prompt"]


def test_unset_options_are_neither_sent_nor_ignored():
    sent: dict = {}
    ignored: list[str] = []
    put_options(Request("x"), {"steps": None, "cfg": "g", "negative": None}, sent, ignored)
    assert sent == {} and ignored == []


@pytest.mark.parametrize("cfg", ["7", True, [1]])
def test_a_cfg_that_is_not_a_number_is_a_usage_error(cfg):
    with pytest.raises(UsageError, match=r"^svc: request.extra\['cfg'\] must be a number, got "):
        check_cfg("svc", cfg)
    check_cfg("svc", 7.5)
    check_cfg("svc", None)


def test_warnings_are_said_once(capsys, monkeypatch):
    monkeypatch.setattr(imagen_core.notices, "_said", set())
    for _ in range(2):
        warn_mapping("svc", "a/b", ["steps", "cfg"], None, unknown=True, extra_key="input")
        warn_mapping(
            "svc", "c/d", ["cfg"], "64x64 is sent as 512x512", unknown=False, extra_key="x"
        )
    assert capsys.readouterr().err.splitlines() == [
        "imagen: svc: a/b is in no known model family, so the request's steps and cfg cannot "
        "be sent; set `family:` in the backend's block, or pass the model's own inputs under "
        "`input:`",
        "imagen: svc: c/d takes no cfg; it is ignored",
        "imagen: svc: c/d: 64x64 is sent as 512x512",
    ]
