"""Credentials from environment variables or files, which a Kubernetes Secret mounts
either way, held so that no log line, alert, metric or repr can show them.

In the channels file a credential `name` is given as `name_env = "VAR"` or
`name_file = "/path"`. A `Secret` knows where it came from, so an error can say
"AMZ_REFRESH is empty" without ever saying what it holds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


class CredentialError(Exception):
    """A credential that cannot be read; the message names its source, never a value."""


@dataclass(frozen=True)
class Secret:
    """A credential value. `str()` and `repr()` show only where it came from."""

    source: str
    _value: str = field(repr=False)

    def reveal(self) -> str:
        """The value, for the one place that sends it to the platform."""
        return self._value

    def __str__(self) -> str:
        return f"<secret from {self.source}>"

    def __repr__(self) -> str:
        return f"Secret({self.source})"


def read_secret(name: str, spec: Mapping[str, str], base: Path) -> Secret:
    """Credential `name` from `spec` (`name_env` or `name_file`; a relative file is
    read from `base`, the channels file's folder). Surrounding whitespace is dropped:
    a mounted Secret file usually ends in a newline."""
    env_key, file_key = f"{name}_env", f"{name}_file"
    if env_key in spec and file_key in spec:
        raise CredentialError(f"{name}: give {env_key} or {file_key}, not both")
    if env_key in spec:
        var = spec[env_key]
        value = os.environ.get(var)
        if value is None:
            raise CredentialError(f"{name}: environment variable {var} is not set")
        source = f"${var}"
    elif file_key in spec:
        path = base / spec[file_key]
        try:
            value = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CredentialError(f"{name}: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CredentialError(f"{name}: {path} is not UTF-8 text") from None
        source = str(path)
    else:
        raise CredentialError(f"{name}: missing; give {env_key} or {file_key}")
    value = value.strip()
    if not value:
        raise CredentialError(f"{name}: {source} is empty")
    return Secret(source, value)


class RedactSecrets(logging.Filter):
    """Replaces every credential value in a log record's message with where it came
    from: a last line of defence should a platform's reply or an exception echo one."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        super().__init__()
        self._secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message, self._secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """`text` with every secret's value replaced by where the secret came from."""
    for secret in secrets:
        text = text.replace(secret.reveal(), str(secret))
    return text
