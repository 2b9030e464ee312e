"""The exceptions invsync raises: one small hierarchy shared by every module."""

from __future__ import annotations


class InvsyncError(Exception):
    """Base of every error invsync raises on purpose."""


class BadInputError(InvsyncError, ValueError):
    """An event or request that must be dead-lettered; the message names the field."""


class ReportedElsewhereError(BadInputError):
    """Bad input about a whole event that a partitioned engine refuses like every
    partition does, and that partition 0 alone reports (dead-letters)."""


class CoreBugError(InvsyncError):
    """A bug in the core (a panic it caught): never the caller's input."""


class SnapshotError(InvsyncError):
    """A snapshot that is corrupt, truncated or from another format version."""


class ConfigError(InvsyncError):
    """A file a person wrote, refused at load, pointing at the file, line and field (or
    column) to fix. Line 0: the file as a whole (unreadable, or no position known)."""

    def __init__(self, source: str, line: int, field: str, message: str) -> None:
        super().__init__(source, line, field, message)
        self.source = source
        self.line = line
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.message}"


class PolicyError(ConfigError):
    """A policy refused at load."""


class ChannelsError(ConfigError):
    """A channels file (`invsync connect --channels`) refused at load."""


class ListingError(ConfigError):
    """A listing map entry refused: a CSV row (field = its column) or a KV entry."""


class VelocityError(ConfigError):
    """A sales-rate CSV (`invsync plan --velocity`) refused: field = the column at fault."""


class ScenarioError(ConfigError):
    """A simulation scenario (`invsync simulate --scenario`) refused at load."""


class CatalogError(ConfigError):
    """A catalog file (`invsync listing check --catalog`) that cannot be read at all; a
    line that cannot be read is a finding at its line, not an exception."""
