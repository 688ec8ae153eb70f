"""Every error imagen raises on purpose. Each carries the exit code the CLI uses.

Messages are written for the person at the terminal: one line that names the
thing that is wrong and how to fix it. Nothing here imports anything heavy.
"""

from __future__ import annotations

import re

#: userinfo of a URL: ``scheme://alice:s3cret@host`` -> ``scheme://***@host``; the
#: placeholder of examples and hints (``user:password``) is left as it is.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?!user:password@)[^/\s@]+@")


def redact(text: str) -> str:
    """``text`` without the credentials of any URL in it (``http://u:pw@h`` ->
    ``http://***@h``). Every error imagen makes passes through it: the text of
    an ImagenError (its ``str``), and ``describe()`` for any other exception,
    so a message can reach no file, log or answer with a password in it.
    Plugins building error text from other sources call it too."""
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


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
    """A backend could not produce an image (a dead server, a refused token, ...)."""


class OutputError(ImagenError):
    """The image could not be written where it was meant to go."""


def describe(exc: BaseException) -> str:
    """One line for an exception: imagen's own as they are, others with their
    type; credentials in URLs cut out either way."""
    text = redact(" ".join(str(exc).split()))
    if isinstance(exc, ImagenError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
