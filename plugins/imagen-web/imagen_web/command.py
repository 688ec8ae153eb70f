"""``imagen serve``: parse the flags, refuse an unsafe address, run uvicorn.

Only click is imported here (this module loads for ``imagen --help``);
Starlette, uvicorn and the app load when the command runs.
"""

from __future__ import annotations

import click

from imagen_core.cli import common

# imagen_web.security.DEFAULT_ADDR and imagen_web.connections' defaults, kept here to stay light
DEFAULT_ADDR = "127.0.0.1:8080"
DEFAULT_REQUEST_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 256


@click.command()
@click.option(
    "--addr",
    default=DEFAULT_ADDR,
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen; [::1]:8080 for IPv6, :8080 for every interface, port 0 "
    "picks a free one. A non-loopback address needs --token.",
)
@click.option(
    "--token",
    envvar="IMAGEN_SERVE_TOKEN",
    metavar="TOKEN",
    help="Require `Authorization: Bearer TOKEN` on every API call (also IMAGEN_SERVE_TOKEN; "
    "at least 16 characters). Open the gallery once as /?token=TOKEN.",
)
@click.option(
    "--usage-source",
    default="ledger",
    show_default=True,
    metavar="NAME",
    help="The sink /v1/usage reads, as `imagen usage --source`.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_REQUEST_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    callback=lambda _ctx, _param, value: _finite(value),
    help="Close a connection whose request's headers do not all arrive within SECONDS "
    "(408), or whose body stops for SECONDS.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    metavar="N",
    help="Open connections at most (and at most half the open-file limit); beyond it "
    "the connection waiting longest for its client is closed.",
)
@click.option(
    "--max-upload",
    default=64,
    show_default=True,
    type=click.IntRange(1, 1024),
    metavar="MB",
    help="Largest body with input images (POST /v1/generate, /v1/jobs, /v1/images/edits), "
    "in MiB; other bodies stay at 64 KiB.",
)
@common
def serve(
    addr: str,
    token: str | None,
    usage_source: str,
    request_timeout: float,
    max_connections: int,
    max_upload: int,
    config_path: str | None,
) -> None:
    """Serve the HTTP API (/v1) and the web gallery (/) until Ctrl-C.

    \b
    The gallery: a prompt form that queues jobs, and the images of output.dir,
    newest first. Jobs are run by `imagen worker` (start one with the same
    config). The API is described at /v1/openapi.json; docs/web.md has examples.
    OpenAI's Images API is served too: point its clients at http://HOST:PORT/v1
    with the token as their API key.

    \b
    imagen serve                               # http://127.0.0.1:8080/
    export IMAGEN_SERVE_TOKEN="$(python3 -c 'import secrets; print(secrets.token_urlsafe())')"
    imagen serve --addr :8080                  # other machines, with the token

    Request bodies are limited to 64 KiB (with images: --max-upload) and
    prompts to 4000 characters. No config value (URL, token, environment
    variable name) is ever in an answer.
    """
    from imagen_web.security import AddressError, check_bind, is_loopback, parse_addr

    try:
        host, port = parse_addr(addr)
        check_bind(host, token or None)
    except AddressError as exc:
        raise click.UsageError(str(exc)) from None
    from imagen_web.server import run

    run(
        host,
        port,
        config_path=config_path,
        token=token or None,
        usage_source=usage_source,
        loopback=is_loopback(host),
        request_timeout_s=request_timeout,
        max_connections=max_connections,
        max_upload=max_upload * 2**20,
    )


def _finite(seconds: float) -> float:
    import math

    if not math.isfinite(seconds):
        raise click.BadParameter(f"{seconds} is not a number of seconds; give one like 10")
    return seconds
