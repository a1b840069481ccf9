"""The cross-chain ledger: a main chain, a relay chain and subchains, each party its own agent.

Chains: the main chain ``M`` (tasks, escrow, global models, payments), the
relay chain ``R`` (checkpoints of every chain, the record of every message)
and subchains of two spaces, physical ``P`` and virtual ``V`` (enrolments,
update records). They run on py-evm in process (``embedded``), on local anvil
nodes (``anvil``) or on nodes given by URL (``rpc``); the contracts are Vyper
0.4 (``contracts/``).

Parties, one module each, each with its own key and its own view of the
chains: :class:`Publisher`, :class:`Worker`, :class:`Validator`,
:class:`CommitteeMember`, :class:`Relayer`. :class:`Network` creates them all
in one process (for runs, tests and benchmarks); :mod:`~aoichain.chain.deployment`
deploys the contracts and writes the public ``deployments.json``.

>>> from aoichain.chain import ChainConfig, Network
>>> with Network.start(ChainConfig(), workers={"P": 2, "V": 2}) as net:  # doctest: +SKIP
...     task = net.publisher.publish(spec)
...     net.relayer.relay_task(task)
"""

from aoichain.chain.client import ChainClient, Receipt
from aoichain.chain.committee import CommitteeMember
from aoichain.chain.config import ChainConfig, TaskSpec
from aoichain.chain.deployment import Deployment
from aoichain.chain.digests import UpdateRecord
from aoichain.chain.errors import (
    AttestationRefused,
    ChainDown,
    ChainOutageWarning,
    ChainRejected,
    ChainRewound,
    ChainUnavailable,
)
from aoichain.chain.messages import RoundRecords
from aoichain.chain.network import Network
from aoichain.chain.publisher import Included, Publisher, Ticket
from aoichain.chain.relayer import Relayer
from aoichain.chain.validator import Validator
from aoichain.chain.worker import Announcement, Withdrawal, Worker

__all__ = [
    "Announcement",
    "AttestationRefused",
    "ChainClient",
    "ChainConfig",
    "ChainDown",
    "ChainOutageWarning",
    "ChainRejected",
    "ChainRewound",
    "ChainUnavailable",
    "CommitteeMember",
    "Deployment",
    "Included",
    "Network",
    "Publisher",
    "Receipt",
    "Relayer",
    "RoundRecords",
    "TaskSpec",
    "Ticket",
    "UpdateRecord",
    "Validator",
    "Withdrawal",
    "Worker",
]
