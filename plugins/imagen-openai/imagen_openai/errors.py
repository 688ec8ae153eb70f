"""What a refused request means, in one line that names the fix.

OpenAI's errors come as ``{"error": {"message", "type", "param", "code"}}``; the
status and ``code`` decide the message (the SDK's own classes are by status). A
compatible server's errors may be shaped otherwise; they still get a line.

Whether ``imagen worker`` may run the job again is ``Answer.retryable``: a 408,
409, 429 or 5xx that the client's own retries did not get past (nothing was made,
so nothing is paid twice). A used-up quota, a gateway's timeout and every other
4xx fail the job at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from imagen_core import BackendError
from imagen_core.remote import one_line
from imagen_openai.client import GATEWAY_TIMEOUTS

if TYPE_CHECKING:
    from imagen_openai.client import Answer, OpenAIClient
    from imagen_openai.config import OpenAIConfig

KEYS_PAGE = "https://platform.openai.com/api-keys"
BILLING_PAGE = "https://platform.openai.com/settings/organization/billing"
LIMITS_PAGE = "https://platform.openai.com/settings/organization/limits"
VERIFY_PAGE = "https://platform.openai.com/settings/organization/general"
STATUS_PAGE = "https://status.openai.com"
USAGE_PAGE = "https://platform.openai.com/usage"
_MODERATION = frozenset({"moderation_blocked", "content_policy_violation"})


@attrs.frozen
class Asked:
    """What was asked, for the message: the endpoint, the size sent, whether a key
    went along, and whether moderation could be loosened."""

    endpoint: str  # "generations" | "edits"
    size: str | None
    key_sent: bool
    moderation_settable: bool


def failure(
    answer: Answer, client: OpenAIClient, config: OpenAIConfig, asked: Asked
) -> BackendError:
    """The error for an answer that is not an image; transient when running the job
    again may pass and cannot pay twice (``Answer.retryable``)."""
    error = _failure(answer, client, config, asked)
    error.transient = answer.retryable
    return error


def _failure(
    answer: Answer, client: OpenAIClient, config: OpenAIConfig, asked: Asked
) -> BackendError:
    service, status, code = client.service, answer.status, answer.code
    error = answer.error
    detail = client.scrub(one_line(str(error.get("message") or answer.text or ""))) or (
        "no detail given"
    )
    param = error.get("param") or None
    ref = f"; request {answer.request_id}" if answer.request_id else ""
    model = config.model
    if status == 401:
        if not asked.key_sent:
            return BackendError(
                f"{service} wants an API key (HTTP 401: {detail}); set api_key_env in the "
                "backend's block to the environment variable that holds it"
            )
        fix = f"set a valid key from {KEYS_PAGE}" if config.is_openai else "check api_key_env"
        return BackendError(
            f"{service} rejected the key in {config.api_key_env} (HTTP 401: {detail}); {fix}"
        )
    if answer.quota_used_up:
        where = f" at {BILLING_PAGE}" if config.is_openai else ""
        return BackendError(
            f"{service} refused the request: {detail} (HTTP {status} {code}); add credit or "
            f"raise the budget{where}"
        )
    if code in _MODERATION or error.get("type") == "image_generation_user_error":
        return BackendError(_moderation(service, code, error, asked, ref))
    if status == 400 and (param == "size" or code == "invalid_size"):
        return BackendError(
            f"{service} refused the size {asked.size} for {model} (HTTP 400: {detail}); ask "
            "for a size it takes with --size"
        )
    if status == 403:
        fix = "check that the key's project may use this model"
        if config.is_openai and "verif" in detail.lower():
            fix = f"the GPT image models need a verified organization: {VERIFY_PAGE}"
        return BackendError(f"{service} refused access to {model} (HTTP 403: {detail}); {fix}")
    if status == 404:
        if code == "model_not_found" or "model" in detail.lower():
            return BackendError(
                f"{service} has no model {model}, or the key may not use it (HTTP 404: {detail}); "
                "check model in the backend's block"
            )
        path = f"/images/{asked.endpoint}"
        why = " (a server without it cannot take input images)" if asked.endpoint == "edits" else ""
        return BackendError(
            f"{service} has no {config.base_url}{path}{why} (HTTP 404); check base_url in the "
            "backend's block: the API root with its /v1, e.g. http://localhost:8080/v1"
        )
    if status == 429:
        where = f" at {LIMITS_PAGE}" if config.is_openai else ""
        return BackendError(
            f"{service} is rate limiting us (HTTP 429: {detail}), still after "
            f"{client.retried} retries; wait a minute and try again, or raise the limits{where}"
        )
    if status in GATEWAY_TIMEOUTS:
        check = f"check {USAGE_PAGE}" if config.is_openai else "check the server"
        return BackendError(
            f"{service}'s gateway gave up waiting for the image (HTTP {status}: {detail}{ref}); "
            f"not retried, as the image may still have been made and billed: {check} before "
            "trying again"
        )
    if status >= 500:
        see = f"see {STATUS_PAGE} and " if config.is_openai else ""
        return BackendError(
            f"{service} is failing (HTTP {status}: {detail}{ref}), still after {client.retried} "
            f"retries; {see}try again later"
        )
    said = ", ".join(str(p) for p in (code, f"param {param}" if param else None) if p)
    said = f" {said}" if said else ""
    text = f"{service} refused the request for {model} (HTTP {status}{said}): {detail}"
    if code == "unknown_parameter" and param:
        text += (
            f"; {model} does not take {param}: remove it from the backend's block "
            "(extra_body, request_fields)"
        )
    elif param:
        text += (
            f"; change {param} (the request's options, or extra_body and request_fields in "
            "the backend's block)"
        )
    elif not answer.retryable:
        text += "; change the request or the backend's block as the message says"
    return BackendError(text)


def _moderation(
    service: str, code: str | None, error: dict[str, object], asked: Asked, ref: str
) -> str:
    details = error.get("moderation_details")
    stage, categories = None, []
    if isinstance(details, dict):
        stage = details.get("moderation_stage")
        found = details.get("categories")
        categories = [str(c) for c in found] if isinstance(found, list) else []
    what = code or "refused"
    if stage:
        what += f" at the {stage} stage"
    if categories:
        what += f": {', '.join(categories)}"
    inputs = " or the input images" if asked.endpoint == "edits" else ""
    text = f"{service}'s safety system refused the request ({what}{ref}); reword the prompt{inputs}"
    if asked.moderation_settable:
        text += ", or set moderation: low in the backend's block"
    return text
