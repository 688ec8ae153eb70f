"""Every error imagen raises on purpose. Each carries the exit code the CLI uses.

Messages are written for the person at the terminal: one line that names the
thing that is wrong and how to fix it. Nothing here imports anything heavy.
"""

from __future__ import annotations

#: userinfo of a URL: ``scheme://alice:s3cret@host`` -> ``scheme://***@host``; the
#: placeholder of examples and hints (``user:password``) is left as it is. Compiled
#: on first use (by ``re``'s cache): most runs never see an ``@``.
_USERINFO = r"(?i)\b([a-z][a-z0-9+.-]*://)(?!user:password@)[^/\s@]+@"


def redact(text: str) -> str:
    """``text`` without the credentials of any URL in it (``http://u:pw@h`` ->
    ``http://***@h``). Every error imagen makes passes through it: the text of
    an ImagenError (its ``str``), and ``describe()`` for any other exception,
    so a message can reach no file, log or answer with a password in it.
    Plugins building error text from other sources call it too."""
    if "@" not in text:
        return text
    import re

    return re.sub(_USERINFO, r"\1***@", text)


class ImagenError(Exception):
    """Base of all imagen errors: work that failed (exit code 1).

    Its text never holds the credentials of a URL (see ``redact``)."""

    exit_code = 1

    def __str__(self) -> str:
        return redact(super().__str__())


class UsageError(ImagenError):
    """The caller asked for something impossible: a bad flag, an unknown name (exit 2)."""

    exit_code = 2


class InvalidRequest(UsageError, ValueError):
    """A Request field is out of range or empty."""


class InvalidInput(InvalidRequest):
    """An input image cannot be used: unreadable, too large, not PNG/JPEG/WebP."""


class Unsupported(UsageError):
    """A backend cannot take what the request gives it (an input image, a mask)."""


class ConfigError(UsageError):
    """imagen.yaml (or the config given in code) has one or more problems.

    ``problems`` holds one line per problem, each naming the key path and, when the
    config came from a file, ``file:line:column``.
    """

    def __init__(self, problems: list[str] | str) -> None:
        given = [problems] if isinstance(problems, str) else list(problems)
        self.problems = [redact(line) for line in given]
        super().__init__("\n".join(self.problems))


class MissingEnvError(ConfigError):
    """A secret's environment variable is unset. Raised by ``require_env``; the core
    adds which configured instance named the variable, which the plugin cannot know."""

    def __init__(self, variable: str, key: str, where: str | None = None) -> None:
        self.variable, self.key = variable, key
        super().__init__(f"set {variable} in the environment (named by {where or key})")

    def for_instance(self, instance: str, section: str = "backends") -> MissingEnvError:
        """The same error, naming the block: ``backends.flux.api_token_env``."""
        return MissingEnvError(self.variable, self.key, f"{section}.{instance}.{self.key}")


class PluginError(UsageError):
    """Installed plugins contradict each other (two register the same name)."""


class BackendError(ImagenError):
    """A backend could not produce an image (a dead server, a refused token, ...).

    ``transient`` says whether the same request may succeed later (a 5xx, a 429,
    a timeout): the worker retries only those. Anything else (a 4xx, a refused
    token, a bad workflow) fails its job at once. Backends pass
    ``transient=True``, or use ``transient_status(code)`` for an HTTP answer."""

    transient = False

    def __init__(self, message: str = "", *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class BackendUnavailable(BackendError):
    """The backend's server cannot be reached (refused, no route, DNS): it may be
    back later. The worker stops claiming that backend's jobs until it is."""

    transient = True


class OutputError(ImagenError):
    """The image could not be written where it was meant to go."""


def describe(exc: BaseException) -> str:
    """One line for an exception: imagen's own as they are, others with their
    type; credentials in URLs cut out either way."""
    text = redact(" ".join(str(exc).split()))
    if isinstance(exc, ImagenError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def transient_status(status: int) -> bool:
    """Whether an HTTP answer with ``status`` may be different later: 408, 429 and
    5xx; any other 4xx is the request's fault and will be refused again."""
    return status in (408, 425, 429) or status >= 500


def is_transient(exc: BaseException) -> bool:
    """Whether a failed generation is worth trying again: a transient
    BackendError, or a connection error or timeout anywhere in its causes.
    Usage and config errors (a missing token, an unknown style, a bad
    workflow) and output errors (the image was made: never pay twice) are not."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BackendError) and seen.transient:
            return True
        if isinstance(seen, (UsageError, OutputError)):
            return False
        if isinstance(seen, (ConnectionError, TimeoutError)):
            return True
        if type(seen).__name__ in _TRANSIENT_NAMES:  # requests', httpx', urllib3's
            return True
        status = getattr(getattr(seen, "response", None), "status_code", None)
        if isinstance(status, int):  # an HTTP client's status error
            return transient_status(status)
        seen = _cause(seen)
    return False


_TRANSIENT_NAMES = frozenset(
    {
        "ConnectionError",
        "ConnectError",
        "Timeout",
        "ConnectTimeout",
        "ReadTimeout",
        "TimeoutException",
        "ChunkedEncodingError",
        "ProtocolError",
        "RemoteDisconnected",
        "RemoteProtocolError",
    }
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether a failure says the backend's server cannot be reached at all."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BackendUnavailable):
            return True
        if isinstance(seen, ConnectionRefusedError):
            return True
        if type(seen).__name__ in ("ConnectionError", "ConnectError") and not isinstance(
            seen, BackendError
        ):  # requests', httpx' "cannot connect"
            return True
        seen = _cause(seen)
    return False


def _cause(exc: BaseException) -> BaseException | None:
    """What ``exc`` was raised from; its context only when not hidden (``from None``)."""
    return exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
