"""The docs stay in step with the code: every hook's exact signature is in
docs/plugins.md, and the tutorial's code blocks are the example's real files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import imagen_core.hookspecs

ROOT = Path(__file__).resolve().parents[2]
PLUGINS_MD = ROOT / "docs" / "plugins.md"


def hook_signatures() -> dict[str, str]:
    """``def name(args) -> ret:`` for every hookspec, as written in the source."""
    tree = ast.parse(Path(imagen_core.hookspecs.__file__).read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            "hookspec" in ast.unparse(d) for d in node.decorator_list
        ):
            out[node.name] = (
                f"def {node.name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}:"
            )
    return out


def test_every_hook_is_found():
    assert set(hook_signatures()) == {
        "register_backends",
        "register_sinks",
        "register_queues",
        "register_commands",
        "naming_fields",
        "preview",
    }


@pytest.mark.parametrize("hook", sorted(hook_signatures()))
def test_hook_documented_with_exact_signature(hook):
    text = PLUGINS_MD.read_text()
    assert hook_signatures()[hook] in text, f"docs/plugins.md lacks: {hook_signatures()[hook]}"
    assert re.search(rf"^#+ .*`?{hook}`?", text, re.M), f"no heading for {hook}"


def test_every_hook_has_a_docstring():
    for name in hook_signatures():
        assert (getattr(imagen_core.hookspecs, name).__doc__ or "").strip(), name


def test_tutorial_code_blocks_are_the_example_files():
    text = PLUGINS_MD.read_text()
    blocks = re.findall(r"<!-- file: (\S+) -->\s*```\w*\n(.*?)```", text, re.S)
    assert {path for path, _ in blocks} >= {
        "docs/examples/imagen-solid/pyproject.toml",
        "docs/examples/imagen-solid/imagen_solid/__init__.py",
    }
    for path, body in blocks:
        assert (ROOT / path).read_text() == body, (
            f"{path} differs from its block in docs/plugins.md"
        )


def test_config_md_shows_the_real_sample():
    import os
    import subprocess
    import sys

    env = {**os.environ, "IMAGEN_LOAD_PLUGINS": "imagen-mock"}
    code = "from imagen_core.cli import main; main(['config', 'init'])"
    real = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    ).stdout
    shown = re.search(
        r"```yaml\n(# imagen.yaml, written by.*?)```",
        (ROOT / "docs" / "config.md").read_text(),
        re.S,
    )
    assert shown and shown.group(1) == real
