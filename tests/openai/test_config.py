"""The ``openai`` block: defaults, validation with file:line, the sample that
`imagen config init` prints, and what `imagen backends` shows."""

from __future__ import annotations

import pytest

from imagen_openai.backend import OpenAIBackend
from imagen_openai.config import OpenAIConfig
from tests.helpers import block_problem, run_cli, structure_block


def structure(pm, isolated_env, block: str):
    return structure_block(pm, isolated_env, "openai", block, "oa")


def problem(pm, isolated_env, block: str) -> str:
    return block_problem(pm, isolated_env, "openai", block, "oa")


def test_defaults():
    config = OpenAIConfig()
    assert (config.model, config.base_url) == ("gpt-image-1", "https://api.openai.com/v1")
    assert config.api_key_env == "OPENAI_API_KEY" and config.is_openai
    assert config.quality is config.background is config.output_format is None
    assert config.moderation is None and config.usd_per_image is None
    assert config.extra_body == {} and config.request_fields == {}
    assert config.timeout_s == 300.0


def test_a_full_block_is_structured(pm, isolated_env):
    settings = structure(
        pm,
        isolated_env,
        "    model: flux-schnell-local\n"
        "    base_url: http://gpu-box.local:8000/v1/\n"
        "    api_key_env: null\n"
        "    quality: anything-the-server-takes\n"
        "    output_format: webp\n"
        "    extra_body: {step: 4, response_format: null}\n"
        "    request_fields: {seed: seed, steps: steps, negative: negative_prompt, cfg: cfg}\n"
        "    usd_per_image: 0.002\n"
        "    timeout_s: 90\n",
    )
    assert settings.base_url == "http://gpu-box.local:8000/v1"  # no trailing slash
    assert settings.api_key_env is None and not settings.is_openai
    assert settings.extra_body == {"step": 4, "response_format": None}
    assert settings.request_fields["negative"] == "negative_prompt"
    assert settings.usd_per_image == 0.002 and settings.timeout_s == 90.0


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("model: gpt image", "model must be a model name such as gpt-image-1 or dall-e-3"),
        (
            "api_key_env: sk-proj-abc123",
            "api_key_env looks like an API key: it must name the environment variable that "
            "holds the key (e.g. OPENAI_API_KEY), never the key",
        ),
        ("api_key_env: my-key", "api_key_env must be an environment variable name"),
        (
            "base_url: api.openai.com",
            "base_url must be an http(s) URL of the API root, with its /v1",
        ),
        (
            "quality: ultra",
            "quality 'ultra' is not a quality gpt-image-1 takes; it takes low, medium, high, auto",
        ),
        (
            "model: dall-e-3\n    quality: high",
            "quality 'high' is not a quality dall-e-3 takes; it takes standard, hd",
        ),
        ("background: clear", "background must be one of transparent, opaque, auto, got 'clear'"),
        (
            "model: dall-e-3\n    background: transparent",
            "background is for the GPT image models; dall-e-3 does not take it",
        ),
        ("output_format: gif", "output_format must be one of png, jpeg, webp, got 'gif'"),
        ("moderation: off", "moderation must be one of low, auto, got 'off'"),
        (
            "request_fields: {seeds: seed}",
            "request_fields maps what a request carries to a body field; 'seeds' is not one of seed, steps, negative, cfg, strength",
        ),
        ("request_fields: {seed: ''}", "request_fields.seed must name a body field"),
        ("usd_per_image: -1", "usd_per_image must be 0 or more, got -1.0"),
        ("timeout_s: 0", "timeout_s must be more than 0, got 0.0"),
        ("extra_body: [a]", "backends.oa.extra_body:"),
        ("modle: x", "backends.oa.modle: unknown key (did you mean 'model'?)"),
    ],
)
def test_bad_values_are_reported_with_the_key_and_line(pm, isolated_env, block, message):
    said = problem(pm, isolated_env, f"    {block}\n")
    assert message in said and "sk-proj-abc123" not in said


def test_the_key_is_in_no_repr(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    config = OpenAIConfig()
    assert "sk-secret" not in repr(config) and "sk-secret" not in repr(OpenAIBackend(config))


def test_config_init_shows_the_examples_and_passes_validate(capsys, tmp_path):
    code, sample, _ = run_cli(capsys, "config", "init")
    assert code == 0
    assert "  # type 'openai', from " in sample
    assert (
        "  gpt-image:\n"
        "    type: openai\n"
        "    # gpt-image-1, gpt-image-1.5, dall-e-3, dall-e-2, ... or a compatible server's model\n"
        '    model: "gpt-image-1"\n'
    ) in sample
    assert '    quality: "medium"\n' in sample
    assert "  imagen-on-gpu-box:\n" in sample and "    api_key_env: null\n" in sample
    assert "pip install imagen-openai" not in sample  # installed: no suggestion
    path = tmp_path / "sample.yaml"
    path.write_text(sample)
    code, out, err = run_cli(capsys, "config", "validate", "--config", str(path))
    assert (code, err) == (0, "") and out.strip().endswith(": ok")
    code, out, _ = run_cli(capsys, "backends", "--config", str(path))
    assert code == 0
    assert "gpt-image" in out and "dall-e-3" in out and "imagen-on-gpu-box" in out


def test_config_init_suggests_the_plugin_when_it_is_missing(capsys, pm):
    pm.unregister(name="openai")
    try:
        code, sample, _ = run_cli(capsys, "config", "init")
    finally:
        import imagen_openai

        pm.register(imagen_openai, name="openai")
    assert code == 0
    assert (
        "#   pip install imagen-openai      # OpenAI's Images API and servers that speak it"
        in sample
    )


def test_backends_lists_the_type(capsys):
    code, out, _ = run_cli(capsys, "backends")
    assert code == 0
    lines = out.splitlines()
    assert any(line.split()[:2] == ["openai", "openai"] for line in lines)  # by name
    types = lines[lines.index("types:") + 1 :]
    assert any(line.split()[0] == "openai" for line in types)
