"""An incentive scheme added from outside aoichain: cost-plus pricing.

The publisher keeps the optimal contract's update frequencies but prices each
item at its intended type's cost plus a markup, ``R_n = (1 + markup) f_n /
gamma_n``, as a procurement office might. Workers still choose their item
themselves, so the run shows whether this menu is incentive compatible (the
contract's feasibility report says it is not: a low-cost type prefers an
item meant for a costlier one).

Use it from a run config::

    [task]
    scheme = "cost_plus:cost_plus"

(run from this folder, or put it on ``PYTHONPATH``).
"""

from __future__ import annotations

import numpy as np

from aoichain.incentive import Contract, Market, build_contract, solve

MARKUP = 0.2


def cost_plus(market: Market, method: str) -> Contract:
    """The CA frequencies, each priced at its type's cost plus ``MARKUP``."""
    optimal = solve(market, scheme="CA", method=method)
    f = np.asarray(optimal.f)
    reward = (1.0 + MARKUP) * f / market.gamma_array
    return build_contract(market, f, reward, scheme="cost_plus", method=method)
