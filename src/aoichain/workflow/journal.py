"""The run journal: what a run has done, written as it goes, so a crash loses at most a step.

A run folder fills while the task runs: ``journal.jsonl`` gets one line per
finished step (publication, enrolment, each round, payment), each flushed
and synced to disk before the next step starts; ``rounds.csv``,
``receipts.jsonl`` and ``rejections.jsonl`` get each round's rows as soon as
the round ends. ``aoichain run --resume RUN`` reads the journal back
(:func:`load_state`) and continues the task against the same chains, every
step checking what the chains already hold before it sends anything; a run
killed hard is settled from it by ``aoichain recover RUN``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aoichain.chain import Receipt, Ticket
from aoichain.chain.keys import Signature
from aoichain.errors import InvalidInput
from aoichain.jsonio import dumps
from aoichain.workflow.steps import GlobalModel, Rejection, RequestLog, RoundMetrics

JOURNAL = "journal.jsonl"


@dataclass
class RunState:
    """Where a task stands between rounds: everything the loop carries from one to the next."""

    started: bool = False
    task_id: int | None = None
    tickets: dict[int, Ticket] = field(default_factory=dict)
    model: GlobalModel | None = None
    credited: list[int] = field(default_factory=list)
    log: RequestLog | None = None
    history: list[RoundMetrics] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    opened: bool = False  # the last round's record opened the next round
    paid: dict[str, Any] | None = None

    @property
    def next_round(self) -> int:
        """The first round not finished."""
        return len(self.history)


def ticket_json(t: Ticket) -> dict[str, Any]:
    """A ticket as JSON (public: the publisher's signature admits, it reveals nothing)."""
    sig = t.signature
    return {**{k: v for k, v in asdict(t).items() if k != "signature"},
            "signature": [sig.v, "0x" + sig.r.hex(), "0x" + sig.s.hex()]}  # fmt: skip


def ticket_of(data: dict[str, Any]) -> Ticket:
    """The ticket :func:`ticket_json` wrote."""
    v, r, s = data["signature"]
    values = {k: data[k] for k in ("task_id", "subchain", "subchain_id", "worker", "item", "index")}
    return Ticket(**values, signature=Signature(int(v), bytes.fromhex(r[2:]), bytes.fromhex(s[2:])))


class Journal:
    """The append-only journal of one run folder, and the per-round files beside it."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.path = self.out / JOURNAL
        self._receipts_written = 0

    def clear(self) -> None:
        """Remove the journal and the per-round files of an earlier run in the folder."""
        for name in (JOURNAL, "rounds.csv", "receipts.jsonl", "rejections.jsonl"):
            (self.out / name).unlink(missing_ok=True)

    def exists(self) -> bool:
        """Whether the folder holds a journal."""
        return self.path.is_file()

    def append(self, event: str, **data: Any) -> None:
        """Write one line and make it durable before the run goes on."""
        self.out.mkdir(parents=True, exist_ok=True)
        line = dumps({"event": event, **data}, indent=None) + "\n"
        with self.path.open("a") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def events(self) -> list[dict[str, Any]]:
        """Every line written so far (a half-written last line, from a crash, is dropped)."""
        if not self.exists():
            return []
        out = []
        for text in self.path.read_text().splitlines():
            try:
                out.append(json.loads(text))
            except json.JSONDecodeError:
                break
        return out

    def receipts(self, receipts: Sequence[Receipt]) -> None:
        """Append the receipts this process has not written yet to ``receipts.jsonl``."""
        self.out.mkdir(parents=True, exist_ok=True)
        with (self.out / "receipts.jsonl").open("a") as fh:
            for receipt in receipts[self._receipts_written :]:
                fh.write(dumps(receipt.to_dict(), indent=None) + "\n")
        self._receipts_written = len(receipts)

    def written_receipts(self) -> list[dict[str, Any]]:
        """Every receipt of the run so far, across resumes."""
        path = self.out / "receipts.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def round_files(self, row: RoundMetrics, rejections: list[Rejection]) -> None:
        """Append a finished round's row and rejections to the run folder."""
        rounds = self.out / "rounds.csv"
        new = not rounds.exists() or row.round == 0
        with rounds.open("w" if new else "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(asdict(row)))
            if new:
                writer.writeheader()
            writer.writerow(asdict(row))
        with (self.out / "rejections.jsonl").open("a") as fh:
            for rejection in rejections:
                fh.write(dumps(asdict(rejection), indent=None) + "\n")


def load_state(journal: Journal, workers: int, rounds: int) -> RunState:
    """The state a journal leaves a task in (fresh if the journal is empty).

    Raises
    ------
    InvalidInput
        If the journal belongs to a run with another number of workers or rounds.
    """
    state = RunState(credited=[0] * workers, log=RequestLog.empty(rounds, workers))
    for e in journal.events():
        kind = e["event"]
        if kind == "started" and (e["workers"], e["rounds"]) != (workers, rounds):
            raise InvalidInput(
                f"{journal.path} is the journal of a run of {e['workers']} workers and "
                f"{e['rounds']} rounds, not {workers} and {rounds}"
            )
        state.started = state.started or kind == "started"
        if kind == "published":
            state.task_id = int(e["task_id"])
        elif kind == "enrolled":
            state.tickets = {int(k): ticket_of(v) for k, v in e["tickets"].items()}
        elif kind == "round":
            r = int(e["row"]["round"])
            state.history.append(RoundMetrics(**e["row"]))
            state.model = GlobalModel(b"", bytes.fromhex(e["row"]["global_sha256"]))
            state.credited = [int(x) for x in e["credited"]]
            assert state.log is not None
            state.log.aoi[r] = np.asarray(e["aoi"], dtype=float)
            state.log.latency[r] = np.asarray(e["latency"], dtype=float)
            state.log.delivered[r] = np.asarray(e["delivered"], dtype=bool)
            state.rejections += [Rejection(**x) for x in e["rejections"]]
            state.opened = bool(e["opened_next"])
        elif kind == "paid":
            state.paid = e
    return state


def run_engine(out: str | Path) -> str:
    """The engine the run of ``out`` started on (its journal's ``started`` line):
    ``in-process`` or ``flower``."""
    for e in Journal(out).events():
        if e["event"] == "started":
            return str(e.get("engine", "in-process"))
    return "in-process"


def check_resumable(out: Path, backend: str, given_network: bool) -> None:
    """Refuse, with the reason, a folder whose run cannot be resumed or recovered.

    Raises
    ------
    InvalidInput
        If the folder holds no journal or no config, or the run's chains
        were started by the run itself (embedded, anvil) and died with it.
    """
    if not (out / JOURNAL).is_file() or not (out / "config.toml").is_file():
        raise InvalidInput(f"{out} holds no run journal (journal.jsonl and config.toml)")
    if backend != "rpc" and not given_network:
        raise InvalidInput(
            f"the run in {out} ran on {backend} chains it started itself, which ended with it; "
            f"only runs on chains that outlive them (backend 'rpc', e.g. 'aoichain chains up') "
            f"can be resumed or recovered"
        )
