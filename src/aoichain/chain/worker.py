"""A worker (an IIoT node or its digital twin): enrols, records its updates, claims its pay.

A worker holds its own key and talks to its own subchain and to M through
its own views. It enrols with the ticket its publisher signed, records each
round's update ``(task, round, sha256, samples, data time)`` on its
subchain, checks the global model it downloads against what its subchain
announces, and claims its pay on M with its ticket (pull payment: M counts
the rounds whose global model included its index; nothing is paid twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from eth_utils import keccak

from aoichain.chain.artifacts import load
from aoichain.chain.client import ChainClient, Receipt, SignedTx, send_together
from aoichain.chain.deployment import Deployment
from aoichain.chain.digests import MAX_CLAIM_ROUNDS
from aoichain.chain.errors import ChainRejected
from aoichain.chain.keys import Signer
from aoichain.chain.publisher import Ticket
from aoichain.errors import IntegrityError, InvalidInput

#: ``Claimed(task_id indexed, worker indexed, index, amount)``: the amount is the data's 2nd word.
CLAIMED_TOPIC = keccak(text="Claimed(uint256,address,uint256,uint256)")

#: Gas limits of a worker's own transactions: above what they use (enrolment ~80k,
#: a record 45-75k), tight enough that a block holds hundreds of them.
ENROL_GAS = 150_000
SUBMIT_GAS = 120_000
CLAIM_GAS = 150_000  # plus CLAIM_GAS_PER_ROUND for every round the claim counts
CLAIM_GAS_PER_ROUND = 3_000


class Withdrawal(NamedTuple):
    """A pull payment on M: what the contract paid and what the worker spent on gas."""

    amount: int
    fee: int


class Announcement(NamedTuple):
    """What a subchain announces of a round's global model."""

    global_sha256: bytes
    included_hash: bytes
    pairs_hash: bytes


class Worker:
    """One worker: its own key, its subchain and M.

    Parameters
    ----------
    signer : Signer
        The worker's key.
    subchain : str
        The key of its subchain (``P``, ``V``, ``P2``...).
    sub : ChainClient
        Transactions and reads on its subchain.
    main : ChainClient
        Transactions and reads on M.
    deployment : Deployment
        The public record.
    """

    def __init__(
        self,
        signer: Signer,
        subchain: str,
        sub: ChainClient,
        main: ChainClient,
        deployment: Deployment,
    ):
        self.signer = signer
        self.subchain = subchain
        self.sub = sub
        self.main = main
        self._sub = sub.contract(load("subchain"), deployment.chains[subchain].contract)
        self._main = main.contract(load("main"), deployment.chains["M"].contract)

    def __repr__(self) -> str:
        return f"Worker({self.subchain} {self.address})"

    @property
    def address(self) -> str:
        """The worker's address."""
        return self.signer.address

    def _check(self, ticket: Ticket) -> None:
        if ticket.worker.lower() != self.address.lower() or ticket.subchain != self.subchain:
            raise InvalidInput(
                f"The ticket admits {ticket.worker} on {ticket.subchain}, not this worker "
                f"({self.address} on {self.subchain})."
            )

    def enrol_tx(self, ticket: Ticket) -> SignedTx:
        """The enrolment transaction for the ticket's task, signed (see :meth:`enrol`)."""
        self._check(ticket)
        return self._signed(
            self.sub, self._sub, "enrol", ENROL_GAS,
            ticket.task_id, ticket.item, ticket.index, ticket.signature.as_tuple(),
        )  # fmt: skip

    def enrol(self, ticket: Ticket) -> Receipt:
        """Enrol in the ticket's task on the worker's subchain.

        Raises
        ------
        ChainRejected
            ``subchain: not admitted by the publisher``, ``subchain: already enrolled``, ...
        """
        self._check(ticket)
        self.sub.transact(
            self.signer,
            self._sub,
            "enrol",
            ticket.task_id,
            ticket.item,
            ticket.index,
            ticket.signature.as_tuple(),
            gas=ENROL_GAS,
        )
        return self.sub.last_receipt

    def update_tx(
        self,
        task_id: int,
        round_no: int,
        update_sha256: bytes,
        samples: int,
        data_timestamp: int,
    ) -> SignedTx:
        """The update record ``(task, round, sha256, samples, data time)``, signed by this
        worker, for its subchain (send it with :func:`~aoichain.chain.client.send_together`
        beside other workers' records, or with :meth:`submit_update` alone).

        Raises
        ------
        InvalidInput
            If the hash is not 32 bytes or a count is negative.
        """
        if not isinstance(update_sha256, bytes | bytearray) or len(update_sha256) != 32:
            raise InvalidInput(
                "The 'update_sha256' parameter of Worker.submit_update must be 32 bytes. "
                f"Got {update_sha256!r} instead."
            )
        for name, value in (("samples", samples), ("data_timestamp", data_timestamp)):
            if not isinstance(value, int) or value < 0:
                raise InvalidInput(
                    f"The {name!r} parameter of Worker.submit_update must be a non-negative int. "
                    f"Got {value!r} instead."
                )
        return self._signed(
            self.sub, self._sub, "submit_update", SUBMIT_GAS,
            task_id, round_no, bytes(update_sha256), samples, data_timestamp,
        )  # fmt: skip

    def submit_update(
        self,
        task_id: int,
        round_no: int,
        update_sha256: bytes,
        samples: int,
        data_timestamp: int,
    ) -> Receipt:
        """Record an update ``(task, round, sha256, samples, data time)`` on the subchain.

        Raises
        ------
        InvalidInput
            If the hash is not 32 bytes or a count is negative.
        ChainRejected
            ``subchain: worker not enrolled``, ``subchain: round not open``,
            ``subchain: more samples than the item's cap``, ...
        """
        self._send(
            lambda: self.update_tx(task_id, round_no, update_sha256, samples, data_timestamp)
        )
        return self.sub.last_receipt

    @staticmethod
    def _send(make: Callable[[], SignedTx]) -> dict[str, Any]:
        """Sign and send one transaction; a nonce the node calls stale is signed again, once."""
        for attempt in (1, 2):
            result = send_together([make()])[0]
            if not isinstance(result, ChainRejected):
                return result
            if attempt == 2 or "nonce" not in result.reason.lower():
                raise result
        raise AssertionError("unreachable")

    def _signed(
        self, client: ChainClient, contract: Any, fn: str, gas: int, *args: Any
    ) -> SignedTx:
        data = contract.aoichain_codec.calldata(fn, args)
        return client.sign(self.signer, contract.address, data, label=fn, gas=gas)

    def enrolled(self, task_id: int) -> bool:
        """Whether the worker's subchain holds its enrolment in the task."""
        return bool(self.sub.call(self._sub, "enrolment", task_id, self.address)[0])

    def has_record(self, task_id: int, round_no: int, index: int) -> bool:
        """Whether the worker's subchain holds its record of the round (``index``: its ticket's)."""
        word = int(self.sub.call(self._sub, "submitted", task_id, round_no, index // 256))
        return bool(word >> (index % 256) & 1)

    def announced(self, task_id: int, round_no: int) -> Announcement:
        """What the worker's subchain announces of a round's global model (zeros: nothing yet)."""
        return Announcement(
            bytes(self.sub.call(self._sub, "global_models", task_id, round_no)),
            bytes(self.sub.call(self._sub, "included_hashes", task_id, round_no)),
            bytes(self.sub.call(self._sub, "pairs_hashes", task_id, round_no)),
        )

    def claimable(self, ticket: Ticket) -> int:
        """Wei the worker could claim now for the ticket's task."""
        return int(
            self.main.call(self._main, "claimable", ticket.task_id, ticket.item, ticket.index)
        )

    def claim_tx(self, ticket: Ticket, until_round: int) -> SignedTx:
        """The claim of :meth:`claim`, signed (its gas limit grows with the rounds it counts)."""
        self._check(ticket)
        gas = CLAIM_GAS + CLAIM_GAS_PER_ROUND * min(max(until_round, 0), MAX_CLAIM_ROUNDS)
        return self._signed(
            self.main, self._main, "claim", gas,
            ticket.task_id, ticket.subchain_id, ticket.item, ticket.index,
            ticket.signature.as_tuple(), until_round,
        )  # fmt: skip

    def claim(self, ticket: Ticket, until_round: int) -> Withdrawal:
        """Claim the pay of every closed round below ``until_round`` that included the worker.

        Returns
        -------
        Withdrawal
            ``(amount, fee)``: wei paid by M, wei the worker spent on gas.

        Raises
        ------
        ChainRejected
            ``main: nothing to claim`` (nothing earned, or already claimed), ...
        """
        return self.withdrawal(self._send(lambda: self.claim_tx(ticket, until_round)))

    def withdrawal(self, receipt: dict[str, Any]) -> Withdrawal:
        """What a claim's receipt says: the amount of M's ``Claimed`` event, the gas fee.

        Raises
        ------
        IntegrityError
            If the receipt holds no ``Claimed`` event of M's contract.
        """
        main = self._main.address.lower()
        for log in receipt["logs"]:
            if log["address"].lower() == main and log["topics"][:1] == [CLAIMED_TOPIC]:
                return Withdrawal(int.from_bytes(log["data"][32:64], "big"), receipt["feeWei"])
        raise IntegrityError(f"claim {receipt['transactionHash']}: M logged no Claimed event")

    def balance(self, chain: str = "M") -> int:
        """The worker's native balance on M (``"M"``) or on its subchain (``"sub"``), wei."""
        client: Any = self.main if chain == "M" else self.sub
        return int(client.balance(self.address))
