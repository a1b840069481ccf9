"""Errors of the Flower engine."""

from __future__ import annotations

from aoichain.errors import AoichainError, Outage


class FederationError(AoichainError):
    """A federation could not run to the end: a process did not start or died, the
    SuperNodes did not all connect, or the ServerApp failed (its one-line reason)."""


class FederationDown(FederationError, Outage):
    """The SuperLink or the ServerApp stopped mid-run (killed, its machine lost): the
    task waits in the run folder's journal, to be resumed (``aoichain run --resume``)
    or settled (``aoichain recover``). A SuperNode that stops is not this: its worker
    misses the rounds it does not answer."""
