"""A1111's ``parameters`` text ("infotext"), the convention most tools read.

Layout (stable-diffusion-webui ``processing.create_infotext``)::

    <prompt, maybe several lines>
    Negative prompt: <negative, only when there is one>
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x512, Model: m

Values containing ``,``, ``:`` or a newline are JSON-quoted (``infotext_utils.quote``).
The last line counts as parameters only when it has at least three ``key: value``
pairs, as A1111's own parser decides.
"""

from __future__ import annotations

import json
import re
from typing import Any

# infotext_utils.re_param; compiled by re's cache when text is parsed (reading an
# image's metadata), not by every generation that only writes it.
_PARAM = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
_NEGATIVE = "Negative prompt:"


def quote(value: object) -> str:
    text = str(value)
    if "," in text or "\n" in text or ":" in text:
        return json.dumps(text, ensure_ascii=False)
    return text


def unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            return str(json.loads(text))
        except ValueError:
            return text
    return text


def format_infotext(prompt: str, negative: str, params: dict[str, Any]) -> str:
    """The text A1111 would write; ``None`` values are left out."""
    line = ", ".join(
        key if value == key else f"{key}: {quote(value)}"
        for key, value in params.items()
        if value is not None
    )
    neg = f"\n{_NEGATIVE} {negative}" if negative else ""
    return f"{prompt}{neg}\n{line}".strip()


def parse_infotext(text: str) -> tuple[str, str, dict[str, str]]:
    """(prompt, negative, parameters) as A1111's ``parse_generation_parameters`` reads them."""
    *lines, last = text.strip().split("\n")
    if len(re.findall(_PARAM, last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(_NEGATIVE):
            in_negative = True
            stripped = stripped[len(_NEGATIVE) :].strip()
        (negative if in_negative else prompt).append(stripped)
    params = {key.strip(): unquote(value.strip()) for key, value in re.findall(_PARAM, last)}
    return "\n".join(prompt), "\n".join(negative), params
