"""The workers of a run: IIoT nodes, their twins, their private types and choices.

Each worker draws a private type from the market's distribution. It is
offered the whole menu and picks the item that maximises its own utility, so
incentive compatibility shows up as behaviour rather than being assumed;
under a scheme of complete information (CC) the publisher knows the types
and assigns the items (:func:`aoichain.workflow.schemes.choose_items`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aoichain.fl import PrivacyPolicy, SensorStream, augment_virtual, twin_view
from aoichain.incentive import Contract, Market
from aoichain.workflow.schemes import Scheme, choose_items


@dataclass(frozen=True, eq=False)
class Worker:
    """One worker of the run.

    Attributes
    ----------
    index : int
        Position among all workers: physical nodes ``0..P-1``, twins ``P..2P-1``.
    space : {"P", "V"}
        Its subchain: the physical or the virtual space.
    space_index : int
        Position among the workers of its space (node ``i`` and its twin share it).
    node : int
        The physical node it is or mirrors.
    type_index : int
        Its private type (0-based index into the market's types).
    gamma : float
        ``1 / delta``, its private inverse unit cost.
    item : int
        The menu item it took, ``-1`` if it declined every item.
    c : float
        Collection slots per cycle of that item.
    phase : int
        Slot at which one of its update cycles starts.
    streams : tuple of SensorStream
        What it holds: the node's full stream (P); the twin's view of it,
        plus data generated in the virtual space if enabled (V).
    address : str
        Its account, the same on every chain.
    """

    index: int
    space: str
    space_index: int
    node: int
    type_index: int
    gamma: float
    item: int
    c: float
    phase: int
    streams: tuple[SensorStream, ...]
    address: str = ""

    @property
    def label(self) -> str:
        """A readable name, e.g. ``P3`` or ``V3``."""
        return f"{self.space}{self.space_index}"


def draw_types(market: Market, n_workers: int, rng: np.random.Generator) -> np.ndarray:
    """Each worker's private type index, drawn from the market's ``Q``."""
    probs = np.asarray(market.probs, dtype=float)
    return rng.choice(probs.size, size=n_workers, p=probs / probs.sum())


def held_streams(
    space: str, stream: SensorStream, policy: PrivacyPolicy, *, augment_seed: int | None
) -> tuple[SensorStream, ...]:
    """What a worker holds of its node's ``stream``: all of it (P); the twin's view under
    the node's ``policy``, plus data generated in the virtual space from that view alone
    when ``augment_seed`` is given (V)."""
    if space == "P":
        return (stream,)
    twin = twin_view(stream, policy)
    return (twin,) if augment_seed is None else (twin, augment_virtual(twin, augment_seed))


def build_workers(
    scheme: Scheme,
    market: Market,
    contract: Contract,
    streams: Sequence[SensorStream],
    policies: Sequence[PrivacyPolicy],
    *,
    seed: int,
    virtual_augment: bool,
) -> list[Worker]:
    """Physical workers (one per stream) and their twins, with types, items and phases.

    The twin of node ``i`` senses nothing itself: its stream is
    :func:`aoichain.fl.twin_view` of node ``i``'s stream under node ``i``'s
    policy (the only path to the virtual space), plus data generated in the
    virtual space when ``virtual_augment`` is set.
    """
    rng = np.random.default_rng(seed)
    n_nodes = len(streams)
    types = draw_types(market, 2 * n_nodes, rng)
    items = choose_items(scheme, contract, types)
    gammas = np.asarray(market.gammas, dtype=float)
    a = round(float(market.a))
    workers: list[Worker] = []
    for index in range(2 * n_nodes):
        node = index % n_nodes
        space = "P" if index < n_nodes else "V"
        augment = seed + node if virtual_augment else None
        held = held_streams(space, streams[node], policies[node], augment_seed=augment)
        item = int(items[index])
        c = float(contract.c[item]) if item >= 0 else float("nan")
        cycle = max(1, round(c + a)) if item >= 0 else 1
        workers.append(
            Worker(
                index=index,
                space=space,
                space_index=node,
                node=node,
                type_index=int(types[index]),
                gamma=float(gammas[types[index]]),
                item=item,
                c=c,
                phase=int(rng.integers(0, cycle)),
                streams=held,
            )
        )
    return workers
