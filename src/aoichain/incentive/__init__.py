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
from aoichain.incentive.curvature import largest_relative_second_difference, second_differences
from aoichain.incentive.errors import InvalidMarket
from aoichain.incentive.freshness import (
    FORMULAS,
    Formulas,
    aoi,
    at_bound,
    collection_slots,
    cycle,
    latency,
    printed_aoi,
    printed_aoi_factor,
    printed_latency,
    printed_latency_excess,
)
from aoichain.incentive.learned import (
    LearnedSatisfaction,
    QualityFit,
    fit_quality,
    fit_satisfaction,
    objective_curvature,
)
from aoichain.incentive.market import (
    DEFAULT_C_MAX_INTEGER,
    F_MIN,
    Market,
    equal_types,
    performance_at,
    satisfaction,
    satisfaction_by_type,
    virtual_costs,
)
from aoichain.incentive.satisfaction import (
    performance_from,
    performance_slope_in_alpha,
    satisfaction_from,
    satisfaction_of_performance,
)
from aoichain.incentive.scaling import log_cost, log_log_slope
from aoichain.incentive.solve import (
    DEFAULT_PHI,
    METHODS,
    SCHEMES,
    Method,
    Scheme,
    algorithm1_evaluations,
    objective_by_type,
    solve,
)

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
    "LearnedSatisfaction",
    "Market",
    "Method",
    "QualityFit",
    "Scheme",
    "algorithm1_evaluations",
    "aoi",
    "at_bound",
    "best_utilities",
    "build_contract",
    "choose_item",
    "collection_slots",
    "cycle",
    "equal_types",
    "feasibility",
    "fit_quality",
    "fit_satisfaction",
    "largest_relative_second_difference",
    "latency",
    "log_cost",
    "log_log_slope",
    "objective_by_type",
    "objective_curvature",
    "optimal_rewards",
    "performance_at",
    "performance_from",
    "performance_slope_in_alpha",
    "printed_aoi",
    "printed_aoi_factor",
    "printed_latency",
    "printed_latency_excess",
    "satisfaction",
    "satisfaction_by_type",
    "satisfaction_from",
    "satisfaction_of_performance",
    "second_differences",
    "solve",
    "utility_matrix",
    "virtual_costs",
]
