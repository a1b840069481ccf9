"""The task publisher (and aggregator): posts and escrows tasks, admits workers, runs rounds.

The publisher holds its own key and reads the main chain through its own
view. It escrows a task's whole budget on M, admits each worker by signing
a ticket ``(subchain, task, worker, item, index)`` that the worker's
subchain checks at enrolment and M checks at payment, opens and closes
rounds, records each round's global model with the bitmap of the worker
indices it includes, and reclaims what was not earned.

Before aggregating, the publisher checks the records a relayer carried
against what M accepted from the committee (count and hash chain of each
subchain's round), so it aggregates exactly the attested records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aoichain.chain import digests
from aoichain.chain.artifacts import load
from aoichain.chain.client import ChainClient
from aoichain.chain.config import TaskSpec
from aoichain.chain.deployment import Deployment
from aoichain.chain.digests import UpdateRecord
from aoichain.chain.keys import Signature, Signer
from aoichain.chain.messages import RoundRecords
from aoichain.errors import IntegrityError, InvalidInput


@dataclass(frozen=True)
class Ticket:
    """A publisher's admission of one worker to a task, on one subchain, with an item and index."""

    task_id: int
    subchain: str
    subchain_id: int
    worker: str
    item: int
    index: int
    signature: Signature


@dataclass(frozen=True)
class Included:
    """One update a global model includes: the worker's index and address, the update's hash."""

    index: int
    worker: str
    update_sha256: bytes


class Publisher:
    """A task publisher: its own key and its own view of the main chain.

    Parameters
    ----------
    signer : Signer
        The publisher's key (it pays the escrow and signs tickets).
    main : ChainClient
        Transactions and reads on M, over the publisher's own view.
    deployment : Deployment
        The public record (which subchains exist, their contracts).
    """

    def __init__(self, signer: Signer, main: ChainClient, deployment: Deployment):
        self.signer = signer
        self.main = main
        self.deployment = deployment
        self.contract = main.contract(load("main"), deployment.chains["M"].contract)
        self._strides: dict[int, int] = {}  # task -> indices per item (fixed at publication)

    def __repr__(self) -> str:
        return f"Publisher({self.address})"

    @property
    def address(self) -> str:
        """The publisher's address."""
        return self.signer.address

    def _send(self, fn: str, *args: Any, value: int = 0, label: str | None = None) -> Any:
        return self.main.transact(self.signer, self.contract, fn, *args, value=value, label=label)

    def _call(self, fn: str, *args: Any) -> Any:
        return self.main.call(self.contract, fn, *args)

    # -------------------------------------------------------------------------- a task

    def publish(self, spec: TaskSpec) -> int:
        """Post a task on M and escrow ``max_workers * max(reward) * rounds``; its id."""
        self._send(
            "publish_task",
            spec.model_spec_hash,
            spec.rounds,
            spec.target_accuracy_ppm,
            spec.menu_f_micro,
            spec.menu_reward_wei_per_round,
            spec.menu_max_samples,
            spec.max_workers,
            value=spec.escrow_wei,
        )
        (event,) = self.main.events(self.contract, "TaskPublished")
        return int(event["args"]["task_id"])

    def admit(self, task_id: int, worker: str, subchain: str, item: int, index: int) -> Ticket:
        """Sign a ticket admitting ``worker`` to a task on ``subchain`` with an item and an index.

        The index must lie in the item's range (``index // stride == item``).

        Raises
        ------
        InvalidInput
            If the subchain is not part of the deployment or the index is out of range.
        """
        if subchain not in self.deployment.subchains:
            raise InvalidInput(
                f"The 'subchain' parameter of Publisher.admit must be one of "
                f"{', '.join(self.deployment.subchains)}. Got {subchain!r} instead."
            )
        if task_id not in self._strides:
            self._strides[task_id] = int(self._call("tasks", task_id)[5])
        stride = self._strides[task_id]
        if stride == 0 or index // stride != item:
            raise InvalidInput(
                f"Worker index {index} is not in item {item}'s range of task {task_id} "
                f"(stride {stride})."
            )
        chain = self.deployment.chains[subchain]
        digest = digests.ticket_digest(chain.chain_id, chain.contract, task_id, worker, item, index)
        return Ticket(
            task_id, subchain, chain.chain_id, worker, item, index, self.signer.sign_digest(digest)
        )

    def open_round(self, task_id: int, round_no: int) -> None:
        """Open the next round on M (rounds count from 0 and open in order)."""
        self._send("open_round", task_id, round_no)

    def close_round(self, task_id: int, round_no: int) -> None:
        """Close the open round on M (with or without a recorded global model)."""
        self._send("close_round", task_id, round_no)

    # ---------------------------------------------------------------------- a round

    def attested(self, task_id: int, round_no: int) -> dict[str, tuple[int, bytes]]:
        """What M accepted of each subchain's round: ``{key: (count, hash chain)}``."""
        out = {}
        for key in self.deployment.subchains:
            chain_id = self.deployment.chains[key].chain_id
            count = int(self._call("inbound_count", chain_id, task_id, round_no))
            if count:
                acc = bytes(self._call("record_accs", chain_id, task_id, round_no))
                out[key] = (count, acc)
        return out

    def verify_records(
        self, task_id: int, round_no: int, carried: dict[str, RoundRecords]
    ) -> dict[str, tuple[UpdateRecord, ...]]:
        """The records a relayer carried that M attested: per subchain, checked against M.

        Raises
        ------
        IntegrityError
            If a subchain's carried records are not the ones M accepted (count
            and hash chain), or M accepted records of a subchain none were carried for.
        """
        verified = {}
        for key, (count, acc) in self.attested(task_id, round_no).items():
            body = carried.get(key)
            if body is None or body.count != count or body.acc != acc:
                raise IntegrityError(
                    f"the records of subchain {key} for task {task_id} round {round_no} are not "
                    f"the {count} records the main chain accepted"
                )
            verified[key] = body.records
        return verified

    def global_model(self, task_id: int, round_no: int) -> bytes:
        """The global model M holds for a round (32 zero bytes: none recorded)."""
        return bytes(self._call("global_models", task_id, round_no))

    def record_global_model(
        self,
        task_id: int,
        round_no: int,
        global_sha256: bytes,
        included: Sequence[Included],
        *,
        open_next: bool = False,
    ) -> Any:
        """Record the round's global model on M with the bitmap of the included indices.

        The pairs hash commits to the included (worker, update hash) pairs in
        index order, so a worker can check what the global model says of it.
        With ``open_next`` the same transaction closes the round and opens the
        next one, and one message carries both down to the subchains.
        """
        ordered = sorted(included, key=lambda x: x.index)
        indices, words = digests.bitmap_lists(digests.bitmap(x.index for x in ordered))
        pairs = digests.pairs_hash((x.worker, x.update_sha256) for x in ordered)
        return self._send(
            "record_global_model",
            task_id,
            round_no,
            global_sha256,
            pairs,
            indices,
            words,
            open_next,
        )

    # ------------------------------------------------------------------------ money

    def finish(self, task_id: int) -> None:
        """End the task: its unspent escrow becomes reclaimable (no round may be open)."""
        self._send("finish_task", task_id)

    def reclaim(self, task_id: int) -> int:
        """Return the finished task's unearned escrow to the publisher; wei."""
        self._send("reclaim", task_id)
        (event,) = self.main.events(self.contract, "Reclaimed")
        return int(event["args"]["amount"])

    def my_tasks(self) -> list[int]:
        """The ids of every task this publisher posted on M (a run's key posts one or a few)."""
        count = int(self._call("task_count"))
        mine = self.address.lower()
        return [i for i in range(1, count + 1) if str(self._call("tasks", i)[0]).lower() == mine]

    def task(self, task_id: int) -> dict[str, Any]:
        """The task as M holds it (escrow, credited, paid, rounds opened/closed, ...)."""
        names = [
            "publisher",
            "spec_hash",
            "rounds",
            "target_accuracy_ppm",
            "max_workers",
            "stride",
            "escrow",
            "credited",
            "paid",
            "reclaimed",
            "rounds_opened",
            "rounds_closed",
            "round_open",
            "finished",
        ]
        return dict(zip(names, self._call("tasks", task_id), strict=True))
