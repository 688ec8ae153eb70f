"""The ``replicate`` block: defaults, validation with file:line, the sample that
`imagen config init` prints, and what `imagen backends` shows."""

from __future__ import annotations

import pytest

from imagen_replicate.config import ReplicateConfig, parse_model
from tests.helpers import block_problem, run_cli, structure_block


def structure(pm, isolated_env, block: str):
    return structure_block(pm, isolated_env, "replicate", block, "rep")


def problem(pm, isolated_env, block: str) -> str:
    return block_problem(pm, isolated_env, "replicate", block, "rep")


def test_defaults():
    config = ReplicateConfig()
    assert config.model == "black-forest-labs/flux-schnell"
    assert config.api_token_env == "REPLICATE_API_TOKEN"
    assert config.input == {} and config.family is None
    assert (config.timeout_s, config.wait_s) == (300.0, 60)
    assert config.base_url == "https://api.replicate.com"


def test_a_full_block_is_structured(pm, isolated_env):
    settings = structure(
        pm,
        isolated_env,
        "    model: someone/sdxl-finetune:" + "a" * 64 + "\n"
        "    api_token_env: TEAM_TOKEN\n"
        "    input: {output_format: png, go_fast: false, num_outputs: 2}\n"
        "    timeout_s: 90\n"
        "    wait_s: 10\n"
        "    family: sdxl\n"
        "    base_url: http://proxy.local:8080/\n",
    )
    assert settings.model_ref.version == "a" * 64
    assert settings.model_ref.slug == "someone/sdxl-finetune"
    assert settings.input == {"output_format": "png", "go_fast": False, "num_outputs": 2}
    assert settings.timeout_s == 90.0 and settings.wait_s == 10 and settings.family == "sdxl"
    assert settings.base_url == "http://proxy.local:8080"  # no trailing slash


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "model: flux-schnell",
            "backends.rep: model must be owner/name (an official model, e.g. "
            "black-forest-labs/flux-schnell) or owner/name:VERSION with the 64-hex version id, "
            "got 'flux-schnell'",
        ),
        ("model: a/b:v1", "or owner/name:VERSION with the 64-hex version id, got 'a/b:v1'"),
        ("wait_s: 0", "wait_s must be between 1 and 60 (Replicate's sync-mode range), got 0"),
        ("wait_s: 61", "wait_s must be between 1 and 60 (Replicate's sync-mode range), got 61"),
        ("wait_s: 1.5", "backends.rep.wait_s: expected an integer, got 1.5"),
        ("timeout_s: 0", "timeout_s must be more than 0, got 0.0"),
        ("family: fluxx", "family 'fluxx' is not a known model family; known: flux-schnell, "),
        ("api_token_env: my-token", "api_token_env must be an environment variable name"),
        ("base_url: api.replicate.com", "base_url must be an http(s) URL"),
        ("input: [a, b]", "backends.rep.input:"),
        ("modle: a/b", "backends.rep.modle: unknown key (did you mean 'model'?)"),
    ],
)
def test_bad_values_are_reported_with_the_key_and_line(pm, isolated_env, block, message):
    assert message in problem(pm, isolated_env, f"    {block}\n")


def test_parse_model():
    assert str(parse_model("a/b")) == "a/b" and parse_model("a/b").version is None
    ref = parse_model("stability-ai/sdxl:" + "7" * 64)
    assert (ref.owner, ref.name, ref.version, ref.slug) == (
        "stability-ai",
        "sdxl",
        "7" * 64,
        "stability-ai/sdxl",
    )


def test_config_init_shows_the_examples_and_passes_validate(capsys, tmp_path):
    code, sample, _ = run_cli(capsys, "config", "init")
    assert code == 0
    assert "  # type 'replicate', from " in sample
    assert (
        "  flux-schnell-replicate:\n"
        "    type: replicate\n"
        "    # owner/name of an official model, or owner/name:VERSION (64 hex digits)\n"
        '    model: "black-forest-labs/flux-schnell"\n'
    ) in sample
    assert "  flux-dev-replicate:\n" in sample
    assert '    input: {"output_format": "png", "go_fast": false}\n' in sample
    assert '    api_token_env: "REPLICATE_API_TOKEN"\n' in sample
    assert "pip install imagen-replicate" not in sample  # installed: no suggestion
    path = tmp_path / "sample.yaml"
    path.write_text(sample)
    code, out, err = run_cli(capsys, "config", "validate", "--config", str(path))
    assert (code, err) == (0, "") and out.strip().endswith(": ok")
    code, out, _ = run_cli(capsys, "backends", "--config", str(path))
    assert code == 0
    assert "flux-schnell-replicate" in out and "flux-dev-replicate" in out


def test_backends_lists_the_type(capsys):
    code, out, _ = run_cli(capsys, "backends")
    assert code == 0
    lines = out.splitlines()
    assert any(line.split()[:2] == ["replicate", "replicate"] for line in lines)  # by name
    types = lines[lines.index("types:") + 1 :]
    assert any(line.split()[0] == "replicate" for line in types)
