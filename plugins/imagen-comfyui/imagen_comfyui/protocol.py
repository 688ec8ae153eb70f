"""What ComfyUI's messages and records mean, without any I/O: the websocket
messages of one prompt, a finished prompt's history entry, the queue listing.

Shapes as a real server sends them (ComfyUI 0.3.64): ``{"type": ..., "data":
{...}}`` messages, history entries with ``outputs`` and ``status.messages``,
queue items ``[number, prompt_id, graph, extra_data, outputs]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from imagen_comfyui import errors

if TYPE_CHECKING:
    from imagen_core.models import Progress

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


@attrs.frozen
class ImageRef:
    """An image ComfyUI made, as ``/history`` and ``/view`` name it."""

    node: str
    filename: str
    subfolder: str = ""
    type: str = "output"

    def query(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


@attrs.frozen
class Finished:
    """What a prompt that ended well left behind."""

    prompt_id: str
    outputs: Mapping[str, Any]
    cached: frozenset[str]  # nodes answered from ComfyUI's cache (nothing ran for them)
    # The server's own execution time (execution_success - execution_start), not
    # the time the prompt waited in ComfyUI's queue; None when not reported.
    execution_s: float | None = None


def display_url(url: str) -> str:
    """The URL without any user:password, for messages and metadata."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def images(outputs: Mapping[str, Any], order: Sequence[str]) -> list[ImageRef]:
    """The images in a history entry's ``outputs``: nodes in ``order`` first, then
    any other node with images; saved files (``output``) before previews (``temp``)."""
    nodes = list(order) + [node for node in outputs if node not in order]
    found = []
    for node in nodes:
        entry = outputs.get(node)
        if not isinstance(entry, Mapping):
            continue
        for item in entry.get("images") or []:
            if isinstance(item, Mapping) and isinstance(item.get("filename"), str):
                found.append(
                    ImageRef(
                        node,
                        item["filename"],
                        str(item.get("subfolder") or ""),
                        str(item.get("type") or "output"),
                    )
                )
    return sorted(found, key=lambda ref: ref.type != "output")  # stable


class Follower:
    """Reads one prompt's websocket messages: progress out, the end detected."""

    def __init__(self, prompt_id: str, graph: Mapping[str, Any], progress: Progress) -> None:
        self.prompt_id = prompt_id
        self.graph = graph
        self.progress = progress
        self.started = False
        self.cached: frozenset[str] = frozenset()
        self.done, self.total = 0, 0

    def _class(self, node: Any) -> str:
        entry = self.graph.get(str(node))
        return str(entry.get("class_type", "")) if isinstance(entry, Mapping) else ""

    def handle(self, message: Any) -> bool:
        """Take one text message; True when the prompt has ended well. Raises
        PromptFailed when it ended in an error or was interrupted."""
        if not isinstance(message, Mapping) or not isinstance(message.get("data"), Mapping):
            return False
        kind, data = message.get("type"), message["data"]
        if kind == "status":
            if not self.started:
                self.progress(0, 0, "queued")
            return False
        # Broadcasts (other clients' interrupts and progress) and the replay
        # after a reconnect carry another prompt_id or none: not ours.
        if data.get("prompt_id") != self.prompt_id:
            return False
        if kind == "execution_start":
            self.started = True
            self.progress(0, 0, "started")
        elif kind == "execution_cached":
            self.cached = frozenset(str(node) for node in data.get("nodes") or [])
        elif kind == "executing":
            if data.get("node") is None:
                return True  # sent after the history entry is written
            self.progress(self.done, self.total, self._class(data["node"]))
        elif kind == "progress":
            value, top = data.get("value"), data.get("max")
            if isinstance(value, int) and isinstance(top, int) and top > 0:
                self.done, self.total = value, top
                self.progress(value, top, self._class(data.get("node")))
        elif kind == "execution_success":
            return True
        elif kind == "execution_error":
            raise errors.PromptFailed(errors.execution_failed(data))
        elif kind == "execution_interrupted":
            raise errors.PromptFailed(errors.interrupted(data))
        return False


def outcome(
    prompt_id: str, entry: Mapping[str, Any], cached: frozenset[str] = frozenset()
) -> Finished:
    """The Finished of a history entry; PromptFailed when it records an error or
    an interrupt (failure and interrupt look alike at the top: read the messages)."""
    status = entry.get("status")
    status = status if isinstance(status, Mapping) else {}
    messages = status.get("messages")
    seen = set(cached)
    stamps: dict[str, float] = {}
    for item in messages if isinstance(messages, list) else []:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[1], Mapping):
            name, data = item
            stamp = data.get("timestamp")
            if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
                stamps[str(name)] = float(stamp)
            if name == "execution_error":
                raise errors.PromptFailed(errors.execution_failed(data))
            if name == "execution_interrupted":
                raise errors.PromptFailed(errors.interrupted(data))
            if name == "execution_cached":
                seen.update(str(node) for node in data.get("nodes") or [])
    if status.get("status_str") == "error":
        raise errors.PromptFailed(f"ComfyUI reports that prompt {prompt_id} failed")
    outputs = entry.get("outputs")
    ran = None
    if "execution_start" in stamps and "execution_success" in stamps:
        ran = max(0.0, (stamps["execution_success"] - stamps["execution_start"]) / 1000)
    outputs = outputs if isinstance(outputs, Mapping) else {}
    return Finished(prompt_id, outputs, frozenset(seen), ran)


def queue_ids(queue: Any, key: str) -> set[str]:
    items = queue.get(key) if isinstance(queue, Mapping) else None
    return {
        str(item[1]) for item in items or [] if isinstance(item, (list, tuple)) and len(item) > 1
    }


def mime_type(filename: str, content_type: str | None) -> str:
    if content_type and content_type.startswith("image/"):
        return content_type.split(";")[0].strip()
    suffix = "." + filename.rpartition(".")[2].lower()
    return _MIME.get(suffix, "image/png")
