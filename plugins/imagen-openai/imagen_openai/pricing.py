"""What an image costs: from the answer's ``usage`` tokens (GPT image models), per
image (DALL-E), or from the table before the call (an estimate for budgets).

Pure functions over models.json; no network.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from imagen_openai.catalog import Price


# Before a call the quality "auto" is resolved by OpenAI per prompt; the estimate
# takes the dearest, so a budget built on it is never too low.
AUTO_QUALITY = "high"
CHARS_PER_TOKEN = 4  # English text, roughly (o200k_base); the text part is cents' fractions


@attrs.frozen
class Cost:
    usd: float | None
    basis: str  # for the sidecar: how the figure was made
    # "computed" (the table and what was made or will be), "estimated" (the table
    # and a guess: quality auto, input images), "billed" (the server reported it),
    # "unknown": Result.cost_basis and Estimate.basis.
    kind: str = "unknown"
    source: str = ""


def from_usage(price: Price, usage: Any) -> Cost | None:
    """The cost of a GPT image answer from its ``usage``; None when it has none."""
    if not isinstance(usage, dict):
        return None
    output = _count(usage.get("output_tokens"))
    total_in = _count(usage.get("input_tokens"))
    if output is None or total_in is None:
        return None
    details = usage.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    image_in = _count(details.get("image_tokens")) or 0
    text_in = _count(details.get("text_tokens"))
    if text_in is None:
        text_in = max(0, total_in - image_in)
    usd = price.token_cost(text_in, image_in, output)
    rates = price.usd_per_million
    basis = (
        f"usage: {text_in} text + {image_in} image input tokens, {output} output tokens at "
        f"{rates['text_input']:g}/{rates['image_input']:g}/{rates['output']:g} USD per 1M "
        f"({price.cited})"
    )
    return Cost(usd, basis, "computed", price.cited)


def before(price: Price, *, quality: str | None, size: str, prompt: str, images: int) -> Cost:
    """The cost of one image from the table alone: what a call will cost."""
    if price.per_token:
        wanted = quality if quality and quality != "auto" else AUTO_QUALITY
        tokens = price.output_tokens.get(wanted, {}).get(size)
        if tokens is None:
            return Cost(None, f"no token count known for {wanted} {size}", "unknown", price.cited)
        text_in = math.ceil(len(prompt) / CHARS_PER_TOKEN)
        usd = price.token_cost(text_in, 0, tokens)
        exact = quality not in (None, "auto") and images == 0
        how = f"{tokens} output tokens for {wanted} {size}, ~{text_in} prompt tokens"
        if images:
            how += f", plus {images} input image(s) not counted"
        return Cost(
            usd, f"{how} ({price.cited})", "computed" if exact else "estimated", price.cited
        )
    wanted = quality or "standard"
    per_image = price.usd_per_image.get(wanted, {}).get(size)
    if per_image is None:
        return Cost(None, f"no price known for {wanted} {size}", "unknown", price.cited)
    basis = f"{per_image:g} USD per {wanted} {size} image ({price.cited})"
    return Cost(per_image, basis, "computed", price.cited)


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
