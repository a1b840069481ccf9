"""Incentive schemes: how the publisher builds its menu and how workers come to their items.

A scheme is a callable ``(market, method) -> Contract``: it builds the menu
the publisher posts on the main chain (``method`` is the run's
``[task] contract_method``: ``exact``, ``algorithm1`` or ``integer``). By
default every worker then chooses its item itself, the one that maximises
its own utility given its private type, so incentive compatibility shows up
as behaviour. A scheme whose attribute ``assigns_items`` is true is one of
complete information: the publisher knows the types and assigns item ``n``
to type ``n``.

Built-ins: ``CA`` (the paper's contract under asymmetric information),
``CS`` (expected social welfare), ``CC`` (complete information), ``flat``
(one item for everyone; the no-incentive baseline). A plug-in is any
callable of the same shape, named in TOML by a dotted path (see
:mod:`aoichain.workflow.plugins`); ``examples/posted_price.py`` is one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from aoichain.incentive import Contract, Market, choose_item, solve
from aoichain.incentive.flat import flat_contract
from aoichain.workflow.plugins import Kind

#: The built-in schemes, in the order ``aoichain compare`` runs them.
BUILTIN_SCHEMES: tuple[str, ...] = ("CA", "CC", "CS", "flat")


@runtime_checkable
class Scheme(Protocol):
    """Builds the menu of contract items the publisher offers."""

    def __call__(self, market: Market, method: str) -> Contract: ...


@dataclass(frozen=True)
class Solved:
    """A scheme of :func:`aoichain.incentive.solve` (``CA``, ``CC`` or ``CS``)."""

    name: str

    @property
    def assigns_items(self) -> bool:
        """Only under complete information (CC) does the publisher assign the items."""
        return self.name == "CC"

    def __call__(self, market: Market, method: str) -> Contract:
        return solve(market, scheme=self.name, method=method)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Flat:
    """One item for every worker (``c`` imposes its collection slots; None: the best one)."""

    c: int | None = None

    def __call__(self, market: Market, method: str) -> Contract:
        return flat_contract(market, method=method, c=self.c)


SCHEME_KIND = Kind(
    key="task.scheme",
    shape="a callable (market, method) -> Contract",
    arity=2,
)


def builtin_schemes(flat_c: int | None = None) -> dict[str, Callable[[], Any]]:
    """Factories of the built-in schemes (``flat_c`` goes to ``flat``)."""
    return {
        "CA": lambda: Solved("CA"),
        "CC": lambda: Solved("CC"),
        "CS": lambda: Solved("CS"),
        "flat": lambda: Flat(flat_c),
    }


def assigns_items(scheme: Scheme) -> bool:
    """Whether the publisher assigns items (complete information) instead of workers choosing."""
    return bool(getattr(scheme, "assigns_items", False))


def choose_items(scheme: Scheme, contract: Contract, types: np.ndarray) -> np.ndarray:
    """The menu item each worker ends up with: assigned by type, or its own best reply.

    A worker that chooses picks the item maximising its utility (``-1``: it
    declines every item); of identical items it takes the first, so a menu
    that repeats one offer (``flat``) reads as one offer.
    """
    if assigns_items(scheme):
        return types.copy()
    gammas = np.asarray(contract.gamma, dtype=float)
    f, reward = np.asarray(contract.f), np.asarray(contract.reward)
    first = [int(np.flatnonzero((f == f[i]) & (reward == reward[i]))[0]) for i in range(f.size)]
    chosen = [choose_item(float(gammas[n]), contract.f, contract.reward) for n in types]
    return np.array([first[i] if i >= 0 else -1 for i in chosen], dtype=int)
