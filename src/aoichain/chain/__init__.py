"""The cross-chain ledger: main, relay and two subchains on real EVM chains with Vyper contracts.

Four chains (M main, R relay, P physical subchain, V virtual subchain) run
on py-evm in process (``embedded``), on local anvil nodes (``anvil``) or on
nodes given by URL (``rpc``). Contracts are Vyper 0.4 (``contracts/``);
messages between chains need ``k`` of ``n`` relay committee signatures over
a digest bound to source and destination, given only after a Merkle proof
of the payload against a validator-checkpointed state root.

>>> from aoichain.chain import Ledger, LedgerConfig
>>> with Ledger.start(LedgerConfig(), n_workers={"P": 2, "V": 2}) as ledger:  # doctest: +SKIP
...     task = ledger.publish_task(b"\\x01" * 32, 3, 0.9, [0.5, 1.0], [10, 20], 4)
...     ledger.relay_task(task)
...     ledger.enrol("P", 0, task, item=1)
...     ledger.open_round(task, 0)
"""

from aoichain.chain.client import Receipt
from aoichain.chain.config import LedgerConfig, TaskSpec
from aoichain.chain.errors import AttestationRefused, ChainRejected, ChainUnavailable
from aoichain.chain.ledger import AttestedUpdate, Ledger, Withdrawal

__all__ = [
    "AttestationRefused",
    "AttestedUpdate",
    "ChainRejected",
    "ChainUnavailable",
    "Ledger",
    "LedgerConfig",
    "Receipt",
    "TaskSpec",
    "Withdrawal",
]
