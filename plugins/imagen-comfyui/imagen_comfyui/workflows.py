"""Workflow templates: ComfyUI API-format graphs with ``${name}`` placeholders, and
the data beside each (model name, defaults, size rule, files to download).

A template is parsed and checked once; each generation substitutes typed values
into a copy of the parsed graph. Substitution never touches JSON text, so a prompt
full of quotes, backslashes or ``${...}`` stays exactly what the person typed.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imagen_comfyui.bundled import FOLDER, META_SUFFIX, looks_like_path, spec_problem
from imagen_comfyui.errors import WorkflowError
from imagen_comfyui.placeholders import (
    BUILTIN_TYPES,
    MASK,
    PLACEHOLDER,
    coerce,
    from_request,
    how_to_set,
    image_index,
    image_name,
    is_builtin,
)
from imagen_core.models import Capabilities

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping

    from imagen_core.models import Request

# Nodes whose images land in /history outputs. SaveImageWebsocket is left out on
# purpose: it sends its images over the websocket only and has no history entry.
IMAGE_OUTPUT_CLASSES = frozenset(
    {"SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", "Image Save"}
)
META_KEYS = ("model", "description", "defaults", "size_multiple", "files")


@attrs.frozen
class ModelFile:
    """One file a workflow needs on the ComfyUI machine."""

    repository: str  # a Hugging Face repository, "owner/name"
    path: str  # the file's path inside the repository
    folder: str  # the sub-folder of ComfyUI's models/ it goes into

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repository}/resolve/main/{self.path}"


@attrs.frozen
class Meta:
    """The data beside a workflow (``NAME.meta.json``); all of it optional."""

    model: str | None = None
    description: str = ""
    defaults: dict[str, Any] = attrs.field(factory=dict)
    size_multiple: int = 1
    files: tuple[ModelFile, ...] = ()


@attrs.frozen
class Placeholder:
    name: str
    node: str
    class_type: str
    input: str

    @property
    def where(self) -> str:
        return f"node {self.node} ({self.class_type}) input {self.input}"


@attrs.frozen
class Workflow:
    name: str
    source: str  # "bundled" or the file's path
    graph: dict[str, Any]
    meta: Meta
    placeholders: tuple[Placeholder, ...]
    output_nodes: tuple[str, ...]  # nodes whose images are taken, in graph order

    @property
    def names(self) -> list[str]:
        """The distinct placeholder names: built-ins first, then the input images
        and the mask, then the workflow's own."""
        found = dict.fromkeys(p.name for p in self.placeholders)
        inputs = [image_name(i) for i in range(1, self.image_count + 1)]
        inputs += [MASK] if MASK in found else []
        return (
            [n for n in BUILTIN_TYPES if n in found]
            + inputs
            + [n for n in found if not is_builtin(n)]
        )

    @property
    def image_count(self) -> int:
        """How many input images the workflow loads (``${image}``, ``${image_2}``, ...)."""
        return max(
            (image_index(p.name) or 0 for p in self.placeholders),
            default=0,
        )

    @property
    def image_names(self) -> tuple[str, ...]:
        return tuple(image_name(i) for i in range(1, self.image_count + 1))

    @property
    def has_mask(self) -> bool:
        return any(p.name == MASK for p in self.placeholders)

    def capabilities(self) -> WorkflowCapabilities:
        """What the workflow takes, read from its placeholders: images for
        ``${image}``..., a mask for ``${mask}``, a strength for ``${denoise}``
        when it loads an image (img2img)."""
        names = {p.name for p in self.placeholders}
        count = self.image_count
        return WorkflowCapabilities(
            text_to_image=count == 0,
            images=count,
            strength=count > 0 and "denoise" in names,
            mask=MASK in names,
            workflow=self.name,
        )

    def literal(self, *inputs: str) -> Any:
        """The first literal value of one of these inputs (``steps``) in the graph."""
        for node in self.graph.values():
            for key in inputs:
                value = node["inputs"].get(key)
                placeholder = isinstance(value, str) and PLACEHOLDER.fullmatch(value)
                if value is not None and not isinstance(value, (list, dict)) and not placeholder:
                    return value
        return None

    @property
    def model(self) -> str:
        """The model as a person names it: from the data, else the loaded file."""
        if self.meta.model:
            return self.meta.model
        loaded = self.literal("ckpt_name", "unet_name")
        if isinstance(loaded, str) and loaded:
            return loaded.rpartition("/")[2].rsplit(".", 1)[0]
        return self.name

    def check_filled(self, names: Collection[str]) -> None:
        """Raise WorkflowError for the first placeholder whose name is not in ``names``."""
        for placeholder in self.placeholders:
            if placeholder.name not in names:
                raise WorkflowError(
                    f"workflow {self.name}: placeholder ${{{placeholder.name}}} in "
                    f"{placeholder.where} has no value; {how_to_set(placeholder.name)}"
                )

    def substitute(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the graph with every placeholder replaced by its typed value.

        Raises WorkflowError naming the first placeholder without a value."""
        self.check_filled(values)
        typed = {name: coerce(name, value) for name, value in values.items()}
        graph = copy.deepcopy(self.graph)
        for node in graph.values():
            node["inputs"] = _replace(node["inputs"], typed)
        return graph


@attrs.frozen
class WorkflowCapabilities(Capabilities):
    """A workflow takes exactly the inputs it has placeholders for: ``images`` is
    how many it needs (not only how many it can take), a ``${mask}`` needs a
    mask. What it lacks names the placeholders, so the person knows why."""

    workflow: str = ""

    def lacks(self, request: Request) -> str | None:
        name = f"workflow {self.workflow}"
        given = len(request.images)
        wanted = [f"${{{image_name(i)}}}" for i in range(1, self.images + 1)]
        if given > self.images:
            if not self.images:
                return f"input images ({name} has no ${{image}} placeholder to load one)"
            return f"{given} input images ({name} loads {self.images}: {', '.join(wanted)})"
        if given < self.images:
            what = "no input image" if not given else f"only {given} input image"
            flag = "--image" if self.images == 1 else f"--image {self.images} times"
            return f"{what} ({name} needs {', '.join(wanted)}; give {flag})"
        if request.mask is not None and not self.mask:
            return f"a mask ({name} has no ${{mask}} placeholder)"
        if request.mask is None and self.mask:
            return f"no mask ({name} needs one for ${{mask}}; give --mask)"
        if request.strength is not None and not self.strength:
            why = "no ${denoise} placeholder" if self.images else "no ${image} to start from"
            return f"a strength ({name} has {why})"
        return None


def _replace(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        match = PLACEHOLDER.fullmatch(value)
        return copy.deepcopy(values[match.group(1)]) if match else value
    if isinstance(value, list):
        return [_replace(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _replace(item, values) for key, item in value.items()}
    return value


# ----------------------------------------------------------------- loading


def load(spec: str, *, output_node: str | None = None) -> Workflow:
    """The workflow named by ``spec``: a bundled name or the path of a JSON file
    (with an optional ``NAME.meta.json`` beside it). Raises WorkflowError."""
    problem = spec_problem(spec)
    if problem:
        raise WorkflowError(problem)
    if looks_like_path(spec):
        path = Path(spec).expanduser()
        name, label = path.name.removesuffix(".json"), str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WorkflowError(f"workflow file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise WorkflowError(f"cannot read workflow file {path}: {reason}") from None
        meta_path = path.with_name(name + META_SUFFIX)
        meta_text = meta_path.read_text(encoding="utf-8") if meta_path.is_file() else None
        meta_label, source = str(meta_path), str(path)
    else:
        name, label, source = spec, f"bundled workflow {spec}", "bundled"
        text = (FOLDER / f"{spec}.json").read_text(encoding="utf-8")
        meta_file = FOLDER / f"{spec}{META_SUFFIX}"
        meta_text = meta_file.read_text(encoding="utf-8") if meta_file.is_file() else None
        meta_label = f"{label} ({spec}{META_SUFFIX})"
    graph = parse_graph(text, label)
    meta = parse_meta(meta_text, meta_label) if meta_text is not None else Meta()
    return build(name, source, graph, meta, output_node)


def parse_graph(text: str, label: str) -> dict[str, Any]:
    """Parse and check an API-format graph: JSON, nodes with class_type and inputs."""
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(
            f"{label} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "export the workflow from ComfyUI with Save (API)"
        ) from None
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise WorkflowError(
            f"{label} is a ComfyUI UI-format workflow (it has nodes and links), which "
            "the API cannot run; export it with Save (API) (enable the dev mode options "
            "in older ComfyUI versions)"
        )
    if not isinstance(data, dict) or not data:
        got = "an empty object" if data == {} else f"a JSON {type(data).__name__}"
        raise WorkflowError(
            f"{label} is not an API-format workflow: expected an object of nodes by id, "
            f"got {got}; export the workflow with Save (API)"
        )
    for node_id, node in data.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise WorkflowError(
                f"{label} is not an API-format workflow: node {node_id} has no class_type; "
                "export the workflow with Save (API)"
            )
        if not isinstance(node.get("inputs", {}), dict):
            raise WorkflowError(f"{label}: node {node_id} has inputs that are not an object")
        node.setdefault("inputs", {})
    for node_id, node in data.items():
        for input_name, target in links(node["inputs"]):
            if target not in data:
                raise WorkflowError(
                    f"{label}: node {node_id} ({node['class_type']}) input {input_name} "
                    f"links to node {target}, which is not in the workflow"
                )
    return data


def links(inputs: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(input name, source node id) for each linked input. A link is
    ``["node id", output index]``; like ComfyUI's ``is_link``, any two-item list
    of a string and a number counts as one."""
    for name, value in inputs.items():
        if (
            isinstance(value, list)
            and len(value) == 2
            and isinstance(value[0], str)
            and isinstance(value[1], (int, float))
            and not isinstance(value[1], bool)
        ):
            yield name, value[0]


def parse_meta(text: str, label: str) -> Meta:
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"{label} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise WorkflowError(f"{label} must be a JSON object with keys {', '.join(META_KEYS)}")
    unknown = sorted(set(data) - set(META_KEYS))
    if unknown:
        raise WorkflowError(
            f"{label}: unknown key {unknown[0]!r}; known keys: {', '.join(META_KEYS)}"
        )
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise WorkflowError(f"{label}: defaults must be an object of placeholder: value")
    for name in defaults:
        if from_request(name):
            raise WorkflowError(
                f"{label}: defaults.{name} cannot be set, it comes from the request"
            )
    try:
        typed = {name: coerce(name, value) for name, value in defaults.items()}
        files = tuple(ModelFile(**entry) for entry in data.get("files", []))
    except WorkflowError as exc:
        raise WorkflowError(f"{label}: defaults: {exc}") from None
    except TypeError as exc:
        raise WorkflowError(
            f"{label}: each entry of files needs repository, path and folder ({exc})"
        ) from None
    multiple = data.get("size_multiple", 1)
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise WorkflowError(f"{label}: size_multiple must be a whole number of 1 or more")
    model = data.get("model")
    return Meta(
        model=model if isinstance(model, str) else None,
        description=str(data.get("description", "")),
        defaults=typed,
        size_multiple=multiple,
        files=files,
    )


def build(
    name: str, source: str, graph: dict[str, Any], meta: Meta, output_node: str | None = None
) -> Workflow:
    """A Workflow from a checked graph: finds placeholders and image-output nodes."""
    label = f"workflow {name}"
    if output_node is not None:
        if output_node not in graph:
            known = ", ".join(
                f"{node_id} ({graph[node_id]['class_type']})" for node_id in image_outputs(graph)
            )
            raise WorkflowError(
                f"output_node {output_node!r} is not a node of {label}; "
                f"its image outputs are: {known or 'none'}"
            )
        if graph[output_node]["class_type"] == "SaveImageWebsocket":
            raise WorkflowError(
                f"output_node {output_node!r} of {label} is a SaveImageWebsocket node, which "
                "only streams its images and keeps none in ComfyUI's history; name a "
                "SaveImage node (add one if there is none)"
            )
        outputs: tuple[str, ...] = (output_node,)
    else:
        outputs = tuple(image_outputs(graph))
    if not outputs:
        if any(node["class_type"] == "SaveImageWebsocket" for node in graph.values()):
            raise WorkflowError(
                f"{label} has no image-output node that ComfyUI keeps in its history: "
                "SaveImageWebsocket only streams images; add a SaveImage node"
            )
        raise WorkflowError(
            f"{label} has no image-output node (SaveImage or PreviewImage); add a SaveImage "
            "node, or name the node that makes the image with output_node"
        )
    found = tuple(_placeholders(graph))
    _check_inputs(label, found)
    return Workflow(name, source, graph, meta, found, outputs)


def _check_inputs(label: str, found: tuple[Placeholder, ...]) -> None:
    """Input images are numbered without gaps, and a mask applies to an image."""
    indices = {index for p in found if (index := image_index(p.name)) is not None}
    for index in sorted(indices):
        if index > 1 and index - 1 not in indices:
            raise WorkflowError(
                f"{label} has ${{{image_name(index)}}} but no ${{{image_name(index - 1)}}}: "
                "number the input images from ${image} up without gaps"
            )
    if any(p.name == MASK for p in found) and 1 not in indices:
        raise WorkflowError(
            f"{label} has ${{mask}} but no ${{image}}: a mask applies to an input image"
        )


def image_outputs(graph: Mapping[str, Any]) -> list[str]:
    return [
        node_id
        for node_id, node in graph.items()
        if node["class_type"] in IMAGE_OUTPUT_CLASSES
        or (
            node["class_type"] != "SaveImageWebsocket"
            and re.search(r"(Save|Preview)\s?Image", node["class_type"])
        )
    ]


def _placeholders(graph: Mapping[str, Any]) -> Iterator[Placeholder]:
    for node_id, node in graph.items():
        for path, value in _strings(node["inputs"], ""):
            match = PLACEHOLDER.fullmatch(value)
            if match:
                yield Placeholder(match.group(1), node_id, node["class_type"], path)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
