"""The pilot of a learned satisfaction: measure quality against AoI, fit ``G``.

Before publishing, the publisher plays the task's first ``pilot_rounds``
rounds off-chain once per pilot item: every worker gets the same flat item
with ``c`` collection slots (``[market] pilot_c``), serves, trains and is
aggregated exactly as in the run (the same streams, clock, cache rule and
held-out evaluation), and the pilot records the mean AoI and latency of the
requests and the target metric of the global model (averaged over the second half of the
pilot's rounds, when training has settled). :func:`aoichain.incentive.fit_satisfaction`
turns those points into the market whose ``G`` the contract is solved in.
No chain is touched and nothing is paid: the pilot stands for a measurement
the publisher made beforehand.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from typing import cast

import numpy as np

from aoichain.chain import Network
from aoichain.fl import ModelStore, aggregate
from aoichain.incentive import LearnedSatisfaction, fit_satisfaction
from aoichain.incentive.flat import flat_contract
from aoichain.workflow.schemes import Flat
from aoichain.workflow.steps import GlobalModel, Prepared
from aoichain.workflow.task import FederatedTask, mean_finite
from aoichain.workflow.workers import build_workers


def pilot_points(prepared: Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean AoI and latency (s) and the target metric of a short off-chain run per pilot item."""
    config = prepared.config
    market, learned = config.market, config.satisfaction
    metric = config.task.target.metric
    aoi, latency, score = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = ModelStore(tmp)
        for c in learned.pilot_c:
            contract = flat_contract(market, method="integer", c=float(c))
            workers = build_workers(
                Flat(c),
                market,
                contract,
                [w.streams[0] for w in prepared.workers if w.space == "P"],
                prepared.policies,
                seed=config.task.seed,
                virtual_augment=config.workers.virtual_augment,
            )
            trial = replace(prepared, contract=contract, workers=workers)
            task = FederatedTask(trial, cast(Network, None), store)
            model = task.initial_model()
            ages, waits, values = [], [], []
            for r in range(learned.pilot_rounds):
                requests = task.serve(r, workers)
                trained = task.train(r, model, requests)
                if trained:
                    blob = aggregate(
                        [x.update.blob for x in trained],
                        [float(x.update.samples) for x in trained],
                        prepared.plugins.aggregation,
                    )
                    model = GlobalModel(blob, b"")
                served = task.slot_of(r) * market.t + max(q.latency for q in requests)
                values.append(task.evaluate(r, model, at=served).value(metric))
                ages.append(mean_finite(np.array([q.aoi for q in requests])))
                waits.append(mean_finite(np.array([q.latency for q in requests])))
            half = len(values) // 2
            aoi.append(float(np.mean(ages[half:])))
            latency.append(float(np.mean(waits[half:])))
            score.append(float(np.nanmean(values[half:])))
    return np.array(aoi), np.array(latency), np.array(score)


def learn_satisfaction(prepared: Prepared) -> LearnedSatisfaction:
    """Fit the publisher's ``G`` to the pilot's points (quality against AoI and latency)."""
    aoi, latency, score = pilot_points(prepared)
    return fit_satisfaction(
        prepared.config.market,
        aoi,
        latency,
        score,
        value=prepared.config.satisfaction.accuracy_value,
    )
