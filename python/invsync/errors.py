"""The exceptions invsync raises: one small hierarchy shared by every module."""

from __future__ import annotations


class InvsyncError(Exception):
    """Base of every error invsync raises on purpose."""


class BadInputError(InvsyncError, ValueError):
    """An event or request that must be dead-lettered; the message names the field."""


class CoreBugError(InvsyncError):
    """A bug in the core (a panic it caught): never the caller's input."""


class SnapshotError(InvsyncError):
    """A snapshot that is corrupt, truncated or from another format version."""


class FileFieldError(InvsyncError):
    """An input file refused, pointing at the file, line and field to fix."""

    def __init__(self, source: str, line: int, field: str, message: str) -> None:
        super().__init__(source, line, field, message)
        self.source = source
        self.line = line
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.message}"


class PolicyError(FileFieldError):
    """A policy refused at load, pointing at the file, line and field to fix."""


class ScenarioError(FileFieldError):
    """A simulation scenario refused at load, pointing at the file, line and field to fix."""
