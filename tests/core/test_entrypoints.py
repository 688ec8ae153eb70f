from __future__ import annotations

import sys
from importlib import metadata

import pytest

from imagen_core import entrypoints
from tests.helpers import make_dist


def reference(group: str) -> set[tuple[str, str, str, str]]:
    return {
        (ep.name, ep.value, entrypoints.normalise(ep.dist.name), ep.dist.version)
        for ep in metadata.entry_points(group=group)
    }


@pytest.mark.parametrize("group", ["console_scripts", "imagen", "pytest11"])
def test_fast_path_agrees_with_importlib_metadata(group):
    assert set(entrypoints.find(group)) == reference(group)


def test_agrees_with_extras_comments_and_other_sections(tmp_path, monkeypatch):
    site = tmp_path / "site"
    make_dist(site, "Fancy.Plugin_Name", "fancy_plugin", "")
    info = next(site.glob("*.dist-info"))
    (info / "entry_points.txt").write_text(
        "# generated\n[console_scripts]\nx = y:z\n\n[imagen]\n"
        "fancy = fancy_plugin:Plugin.inner [gpu]\n# a comment\nother=fancy_plugin\n"
    )
    monkeypatch.syspath_prepend(str(site))
    assert set(entrypoints.find("imagen")) == reference("imagen")
    found = {ep.name: ep for ep in entrypoints.find("imagen")}
    assert found["fancy"] == (
        "fancy",
        "fancy_plugin:Plugin.inner [gpu]",
        "fancy-plugin-name",
        "1.2.3",
    )


@pytest.mark.parametrize("fast", [True, False])
def test_only_keeps_the_named_distributions(fast, tmp_path, monkeypatch):
    if not fast:  # an unusual sys.path entry: the importlib.metadata path
        archive = tmp_path / "bundle.zip"
        archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
        monkeypatch.setattr(sys, "path", [*sys.path, str(archive)])
    every = {ep.dist for ep in entrypoints.find("imagen")}
    assert {"imagen-mock", "imagen-comfyui"} <= every  # the dev install has both
    only = entrypoints.find("imagen", only={"imagen-mock"})
    assert {ep.dist for ep in only} == {"imagen-mock"}
    assert set(only) == {ep for ep in reference("imagen") if ep[2] == "imagen-mock"}


def test_a_zip_on_sys_path_falls_back_to_importlib_metadata(tmp_path, monkeypatch):
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip file
    monkeypatch.setattr(sys, "path", [*sys.path, str(archive)])
    calls = []
    real = entrypoints._slow
    monkeypatch.setattr(entrypoints, "_slow", lambda group: calls.append(group) or real(group))
    assert set(entrypoints.find("imagen")) == reference("imagen")
    assert calls == ["imagen"]


def test_load_resolves_module_and_attribute_path():
    ep = entrypoints.EntryPoint("x", "os.path:join", "d", "1")
    import os.path

    assert ep.load() is os.path.join
    assert entrypoints.EntryPoint("x", "os.path", "d", "1").load() is os.path
    assert entrypoints.EntryPoint("x", "os.path:join [extra]", "d", "1").load() is os.path.join
