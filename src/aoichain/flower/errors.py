"""Errors of the Flower engine."""

from __future__ import annotations

from aoichain.errors import AoichainError


class FederationError(AoichainError):
    """A federation could not run to the end: a process did not start or died, the
    SuperNodes did not all connect, or the ServerApp failed (its one-line reason)."""
