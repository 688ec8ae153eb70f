"""The ``fal`` block: defaults, validation with file:line, the sample that
`imagen config init` prints (installed, and not), and `imagen backends`."""

from __future__ import annotations

import pytest

from imagen_core.config_sample import sample
from imagen_core.registry import collect
from imagen_fal.config import FalConfig
from tests.helpers import block_problem, run_cli, structure_block


def structure(pm, isolated_env, block: str):
    return structure_block(pm, isolated_env, "fal", block, "f")


def problem(pm, isolated_env, block: str) -> str:
    return block_problem(pm, isolated_env, "fal", block, "f")


def test_defaults():
    config = FalConfig()
    assert config.model == "fal-ai/flux/schnell"
    assert config.api_key_env == "FAL_KEY"
    assert config.extra == {} and config.family is None
    assert config.timeout_s == 300.0
    assert config.base_url == "https://queue.fal.run"
    assert (config.inline_max_kb, config.storage_url) == (2048, "https://rest.alpha.fal.ai")


def test_a_full_block_is_structured(pm, isolated_env):
    settings = structure(
        pm,
        isolated_env,
        "    model: fal-ai/bytedance/seedream/v4/edit\n"
        "    api_key_env: TEAM_FAL_KEY\n"
        "    extra: {enable_safety_checker: false, num_images: 2}\n"
        "    timeout_s: 90\n"
        "    family: seedream-v4-edit\n"
        "    base_url: http://proxy.local:8080/\n",
    )
    assert settings.model == "fal-ai/bytedance/seedream/v4/edit"
    assert settings.api_key_env == "TEAM_FAL_KEY"
    assert settings.extra == {"enable_safety_checker": False, "num_images": 2}
    assert settings.timeout_s == 90.0 and settings.family == "seedream-v4-edit"
    assert settings.base_url == "http://proxy.local:8080"  # no trailing slash


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "model: flux-schnell",
            "backends.f: model must be a fal endpoint id, owner/alias[/path] (e.g. "
            "fal-ai/flux/schnell or fal-ai/flux-pro/kontext), got 'flux-schnell'",
        ),
        ("model: workflows/x", "model must be a fal endpoint id"),
        ("model: fal-ai/flux/", "model must be a fal endpoint id"),
        ("timeout_s: 0", "timeout_s must be more than 0, got 0.0"),
        ("family: fluxx", "family 'fluxx' is not a known model family; known: flux-schnell, "),
        ("api_key_env: my-key", "api_key_env must be an environment variable name such as FAL_KEY"),
        (
            "base_url: queue.fal.run",
            "base_url must be an http(s) URL such as https://queue.fal.run",
        ),
        ("storage_url: x", "storage_url must be an http(s) URL such as https://rest.alpha.fal.ai"),
        ("inline_max_kb: -1", "inline_max_kb must be 0 or more, got -1"),
        ("extra: [a, b]", "backends.f.extra:"),
        ("extra: {prompt: hi}", "extra must not set prompt: the prompt comes from the request"),
        ("modle: a/b", "backends.f.modle: unknown key (did you mean 'model'?)"),
    ],
)
def test_bad_values_are_reported_with_the_key_and_line(pm, isolated_env, block, message):
    assert message in problem(pm, isolated_env, f"    {block}\n")


def test_a_key_pasted_where_its_variable_belongs_is_never_echoed(pm, isolated_env):
    key = "0f9e8d7c-6b5a-4321-9fed-cba987654321:0123456789abcdef0123456789abcdef"
    said = problem(pm, isolated_env, f"    api_key_env: '{key}'\n")
    assert "api_key_env looks like an API key" in said
    assert key not in said and "0123456789abcdef" not in said


def test_config_init_shows_the_examples_and_passes_validate(capsys, tmp_path):
    code, text, _ = run_cli(capsys, "config", "init")
    assert code == 0
    assert "  # type 'fal', from " in text
    assert (
        "  flux-schnell-fal:\n"
        "    type: fal\n"
        "    # fal endpoint id, e.g. fal-ai/flux/schnell, fal-ai/flux-pro/kontext\n"
        '    model: "fal-ai/flux/schnell"\n'
    ) in text
    assert "  kontext-fal:\n    type: fal\n" in text
    assert '    api_key_env: "FAL_KEY"\n' in text
    assert "pip install imagen-fal" not in text  # installed: no suggestion
    path = tmp_path / "sample.yaml"
    path.write_text(text)
    code, out, err = run_cli(capsys, "config", "validate", "--config", str(path))
    assert (code, err) == (0, "") and out.strip().endswith(": ok")


def test_without_the_plugin_the_sample_shows_a_commented_block(pm):
    pm.unregister(name="fal")
    text = sample(collect(pm))
    assert "#   pip install imagen-fal         # fal.ai's queue API" in text
    assert (
        "  # With imagen-fal installed (pip install imagen-fal):\n"
        "  # flux-schnell-fal:\n"
        "  #   type: fal\n"
        '  #   model: "fal-ai/flux/schnell"\n'
        '  #   api_key_env: "FAL_KEY"\n'
    ) in text


def test_backends_lists_the_type(capsys):
    code, out, _ = run_cli(capsys, "backends")
    assert code == 0
    lines = out.splitlines()
    types = lines[lines.index("types:") + 1 :]
    assert any(line.split()[0] == "fal" for line in types)
