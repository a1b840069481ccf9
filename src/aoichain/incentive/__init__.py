"""The incentive engine: AoI and latency model, markets, optimal contracts (pure math).

>>> from aoichain.incentive import Market, solve
>>> contract = solve(Market.paper_default(), scheme="CA", method="exact")
>>> contract.feasibility.ic and contract.feasibility.ir
True
"""

from aoichain.incentive.contract import (
    Contract,
    Feasibility,
    best_utilities,
    build_contract,
    choose_item,
    feasibility,
    optimal_rewards,
    utility_matrix,
)
from aoichain.incentive.errors import InvalidMarket
from aoichain.incentive.freshness import FORMULAS, Formulas, aoi, latency
from aoichain.incentive.market import (
    DEFAULT_C_MAX_INTEGER,
    F_MIN,
    Market,
    equal_types,
    satisfaction,
    virtual_costs,
)
from aoichain.incentive.satisfaction import (
    performance_from,
    satisfaction_from,
    satisfaction_of_performance,
)
from aoichain.incentive.solve import DEFAULT_PHI, METHODS, SCHEMES, Method, Scheme, solve

__all__ = [
    "DEFAULT_C_MAX_INTEGER",
    "DEFAULT_PHI",
    "FORMULAS",
    "F_MIN",
    "METHODS",
    "SCHEMES",
    "Contract",
    "Feasibility",
    "Formulas",
    "InvalidMarket",
    "Market",
    "Method",
    "Scheme",
    "aoi",
    "best_utilities",
    "build_contract",
    "choose_item",
    "equal_types",
    "feasibility",
    "latency",
    "optimal_rewards",
    "performance_from",
    "satisfaction",
    "satisfaction_from",
    "satisfaction_of_performance",
    "solve",
    "utility_matrix",
    "virtual_costs",
]
