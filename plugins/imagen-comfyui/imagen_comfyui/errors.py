"""ComfyUI's error answers, each turned into one line that names the node, the
input and ComfyUI's reason, and says how to fix it where that is known.

The shapes are those of a real server (``/prompt`` 400 bodies with
``node_errors``, ``execution_error`` and ``execution_interrupted`` messages).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from imagen_core.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from imagen_comfyui.workflows import ModelFile

DOCS = "docs/backends.md"

# Which sub-folder of ComfyUI's models/ a loader input reads its file from.
MODEL_FOLDERS = {
    "ckpt_name": "checkpoints",
    "unet_name": "diffusion_models",
    "vae_name": "vae",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
    "clip_name3": "text_encoders",
    "clip_name4": "text_encoders",
    "lora_name": "loras",
    "control_net_name": "controlnet",
    "style_model_name": "style_models",
}
# Loaders whose input name alone would mislead.
CLASS_MODEL_FOLDERS = {
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("HypernetworkLoader", "hypernetwork_name"): "hypernetworks",
    ("GLIGENLoader", "gligen_name"): "gligen",
}
MODEL_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf")
_MAX_DETAIL = 160


class WorkflowError(ConfigError):
    """A workflow template, its data or a value for it is unusable (exit 2)."""


class PromptFailed(BackendError):
    """The prompt ran on the server and ended in an error or an interrupt: there is
    nothing left to cancel."""


def model_folder(class_type: str, input_name: str) -> str | None:
    return CLASS_MODEL_FOLDERS.get((class_type, input_name)) or MODEL_FOLDERS.get(input_name)


def one_line(text: Any, limit: int = _MAX_DETAIL) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def rejected(body: Any, files: Iterable[ModelFile] = ()) -> str:
    """What a 400 from ``POST /prompt`` says, in one line (without a prefix)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
        return "no details given (HTTP 400)"
    error = body["error"]
    kind = str(error.get("type", ""))
    message = one_line(error.get("message", "")) or kind
    details = one_line(error.get("details", ""))
    node_errors = body.get("node_errors")
    problems = node_problems(node_errors, files) if isinstance(node_errors, Mapping) else []
    if problems:
        return "; ".join(problems)
    if kind == "invalid_prompt" and "does not exist" in message:
        # A class this ComfyUI does not know: a custom node, or a newer core node.
        return (
            f"{message} ({details}): install the custom node that provides it, "
            "or update ComfyUI if it is a core node"
        )
    if kind == "prompt_no_outputs":
        return "the workflow has no output node ComfyUI can run (add a SaveImage node)"
    return f"{message} ({details})" if details and details != message else message


def node_problems(node_errors: Mapping[str, Any], files: Iterable[ModelFile] = ()) -> list[str]:
    """One phrase per input error in ``node_errors`` (400 bodies and 200 answers)."""
    known = {f.name: f for f in files}
    problems = []
    for node_id, entry in node_errors.items():
        if not isinstance(entry, Mapping):
            continue
        class_type = str(entry.get("class_type", "?"))
        for error in entry.get("errors") or []:
            if isinstance(error, Mapping):
                problems.append(_input_problem(str(node_id), class_type, error, known))
    return problems


def _input_problem(
    node_id: str, class_type: str, error: Mapping[str, Any], known: Mapping[str, ModelFile]
) -> str:
    extra = error.get("extra_info") if isinstance(error.get("extra_info"), Mapping) else {}
    assert isinstance(extra, Mapping)
    input_name = extra.get("input_name")
    where = f"node {node_id} ({class_type})" + (f" input {input_name}" if input_name else "")
    kind = error.get("type")
    value = extra.get("received_value")
    if kind == "value_not_in_list" and isinstance(value, str) and input_name:
        folder = model_folder(class_type, str(input_name))
        if folder or value.lower().endswith(MODEL_SUFFIXES):
            place = f"ComfyUI's models/{folder}" if folder else "ComfyUI's models folders"
            source = known.get(value.rpartition("/")[2])
            fetch = f"; download it from huggingface.co/{source.repository}" if source else ""
            return f"{value} is not in {place} ({where}){fetch} — see {DOCS}"
        return f"{where}: {value!r} is not one of ComfyUI's choices (update ComfyUI?)"
    message = one_line(error.get("message", "")) or str(kind)
    details = one_line(error.get("details", ""))
    if details and details != input_name and details not in message:
        message = f"{message}: {details}"
    return f"{where}: {message}"


def execution_failed(data: Mapping[str, Any]) -> str:
    """One line for an ``execution_error`` message (or its copy in the history)."""
    node = f"node {data.get('node_id', '?')} ({data.get('node_type', '?')})"
    kind = str(data.get("exception_type") or "error")
    text = one_line(data.get("exception_message", ""), 300)
    hint = ""
    if "OutOfMemory" in kind or "out of memory" in text.lower():
        hint = "; try a smaller --size or batch, or free GPU memory"
    return f"ComfyUI failed in {node}: {kind}: {text}{hint}"


def interrupted(data: Mapping[str, Any]) -> str:
    node = f"node {data.get('node_id', '?')} ({data.get('node_type', '?')})"
    return f"ComfyUI interrupted the prompt in {node}: it was cancelled on the server"
