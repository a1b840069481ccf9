"""Errors of the ledger layer.

``ChainRejected`` carries the contract's revert reason, which always starts
with the contract or module name (``"subchain: worker not enrolled"``).
``ChainUnavailable`` is a bad RPC URL or deployments file: it is raised while
connecting, before any transaction is sent. ``AttestationRefused`` is what a
relayer meets when fewer than ``k`` committee members accept to sign, e.g.
because the payload it carries differs from the source chain's state.
"""

from __future__ import annotations

from aoichain.errors import AoichainError, IntegrityError, InvalidInput


class ChainRejected(AoichainError):
    """A transaction reverted; ``reason`` is the contract's revert string."""

    def __init__(self, reason: str, *, chain: str | None = None, label: str | None = None):
        self.reason = reason
        self.chain = chain
        self.label = label
        where = f"{label} on {chain}: " if label and chain else ""
        super().__init__(f"{where}{reason}")


class ChainUnavailable(InvalidInput):
    """A chain cannot be reached or a deployments/RPC file is unusable."""


class AttestationRefused(IntegrityError):
    """Fewer than ``k`` relay committee members accepted to sign a message."""
