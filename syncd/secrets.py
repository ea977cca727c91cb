"""Secret references in the config: a literal, `{env: NAME}`, `{file: PATH}`, `{credential: NAME}`.

A reference is resolved while the config is validated, so a missing secret is one more
`path: message` line. Messages name the reference (the variable, the file, the
credential), never the value; resolved values live in `SecretStr` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, SecretStr, ValidationInfo

SECRET_FORMS = "a quoted string or one of {env: NAME}, {file: PATH}, {credential: NAME}"


@dataclass(frozen=True)
class LoadContext:
    """Where relative paths and secret references are resolved during validation."""

    base: Path = field(default_factory=Path.cwd)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    credentials_dir: Path | None = None

    def path(self, value: Path) -> Path:
        """`value` with `~` expanded, made absolute against the config file's folder."""
        return self.base / value.expanduser()


def context_of(info: ValidationInfo) -> LoadContext:
    """The context `load_config` passed in, or one for the current process."""
    return info.context if isinstance(info.context, LoadContext) else LoadContext()


def resolve_secret(value: object, info: ValidationInfo) -> object:
    """Turn a secret reference into its value; leave anything else to pydantic."""
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        if not value:
            raise ValueError("must not be empty")
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((form, ref),) = value.items()
        reader = _READERS.get(form)
        if reader is not None and isinstance(ref, str) and ref:
            return reader(ref, context_of(info))
    raise ValueError(f"must be {SECRET_FORMS}")


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
"""A `SecretStr` field that also takes `{env:}`, `{file:}` and `{credential:}` references."""


def _from_env(name: str, context: LoadContext) -> str:
    value = context.environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} is not set")
    if not value:
        raise ValueError(f"environment variable {name} is empty")
    return value


def _from_file(name: str, context: LoadContext) -> str:
    path = context.path(Path(name))
    return _read(path, f"secret file {path}")


def _from_credential(name: str, context: LoadContext) -> str:
    if "/" in name or name in (".", ".."):
        raise ValueError(f"credential {name!r} must be a plain file name")
    folder = context.credentials_dir or context.environ.get("CREDENTIALS_DIRECTORY")
    if not folder:
        raise ValueError(
            f"credential {name}: $CREDENTIALS_DIRECTORY is not set (systemd LoadCredential=)"
        )
    path = Path(folder) / name
    if not path.exists():
        raise ValueError(f"credential {name} not found in $CREDENTIALS_DIRECTORY")
    return _read(path, f"credential {name}")


def _read(path: Path, what: str) -> str:
    """A secret file's text without one trailing newline; failures name `what` only."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ValueError(f"{what} not found") from None
    except IsADirectoryError:
        raise ValueError(f"{what} is a directory") from None
    except OSError as error:
        raise ValueError(f"{what} cannot be read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not UTF-8 text") from None
    text = _strip_one_newline(text)
    if not text:
        raise ValueError(f"{what} is empty")
    return text


def _strip_one_newline(text: str) -> str:
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            return text[: -len(ending)]
    return text


_READERS: dict[str, Callable[[str, LoadContext], str]] = {
    "env": _from_env,
    "file": _from_file,
    "credential": _from_credential,
}
