"""invsync: one source of truth for stock, reservations and what every sales channel may show."""

from invsync._core import __version__
from invsync.engine import Effects, Engine
from invsync.errors import BadInputError, InvsyncError, PolicyError, SnapshotError
from invsync.explain import Explanation
from invsync.policy import Policy

__all__ = [
    "BadInputError",
    "Effects",
    "Engine",
    "Explanation",
    "InvsyncError",
    "Policy",
    "PolicyError",
    "SnapshotError",
    "__version__",
]
