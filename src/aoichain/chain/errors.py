"""Errors of the ledger layer.

``ChainRejected`` carries the contract's revert reason, which always starts
with the contract or module name (``"subchain: worker not enrolled"``).
``ChainUnavailable`` is a bad RPC URL or deployments file, or a node that
answers nonsense: it is raised while connecting, before any transaction is
sent, or when an answer is unusable. ``ChainDown`` is a node that stopped
answering mid-work and did not come back within ``[chain] outage_s``;
``ChainRewound``, one that came back without blocks this process saw (killed
between two saves of its state). ``AttestationRefused`` is what a relayer
meets when fewer than ``k`` committee members accept to sign, e.g. because
the payload it carries differs from the source chain's state.
"""

from __future__ import annotations

from aoichain.errors import AoichainError, IntegrityError, InvalidInput, Outage


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


class ChainDown(Outage):
    """A chain's node stopped answering and did not come back within the wait.

    The message is one line: ``chain P (http://127.0.0.1:8547) is down: ...``.

    Attributes
    ----------
    chain
        The chain's key (``M``, ``R``, ``P``, ...).
    url
        The endpoint that stopped answering.
    """

    def __init__(self, chain: str, url: str | None, what: str):
        self.chain = chain
        self.url = url
        super().__init__(f"chain {chain} ({url}) {what}")


class ChainRewound(ChainDown):
    """A chain's node came back without blocks this process had seen (lost with its last state).

    Transactions this process saw mined may be gone: carry on only from what
    the chain holds now (resume the run). ``seen`` is the block number it no
    longer holds (or holds with another hash), ``head`` its head now.
    """

    def __init__(self, chain: str, url: str | None, seen: int, head: int):
        self.seen = seen
        self.head = head
        super().__init__(
            chain,
            url,
            f"came back without block {seen} this process saw (its head is block {head}): "
            f"the node lost its last blocks; resume from what the chain holds",
        )


class ChainOutageWarning(UserWarning):
    """A chain's node does not answer; the view waits (up to ``outage_s``) for it to come back."""


class AttestationRefused(IntegrityError):
    """Fewer than ``k`` relay committee members accepted to sign a message."""
