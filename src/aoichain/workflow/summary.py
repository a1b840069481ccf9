"""The run's headline numbers: one typed record, written as ``summary.json``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RunSummary(BaseModel):
    """Headline numbers of a run (``summary.json``).

    Metrics are the global model's on the held-out evaluation windows
    (``final_*``: the last round; ``mean_*``: the mean over the rounds;
    ``final_confusion``: ``tp, fp, tn, fn`` with anomaly as positive); the
    target is judged only on rounds whose evaluation set holds enough
    windows of each class (``rounds_not_judged`` counts the others);
    ``streams_without_anomalies`` counts, per stream, the rounds in which it
    gave no anomalous evaluation window. AoI and latency are seconds of the
    slot clock; money is wei, ``reward_paid`` the same in contract reward
    units, and ``accuracy_per_reward`` / ``f1_per_reward`` the mean metric
    per reward unit paid. The SP's utility is the contract's prediction, that
    prediction for the types the workers drew, and the realisation from
    measured AoI and latency (in the fitted market with a learned satisfaction,
    whose fit is ``learned_satisfaction``).
    """

    model_config = ConfigDict(frozen=True)

    scheme: str
    plugins: dict[str, str]
    rounds_run: int
    initial_accuracy: float
    initial_roc_auc: float
    final_accuracy: float
    final_f1: float
    final_roc_auc: float
    final_precision: float
    final_recall: float
    final_pr_auc: float
    final_balanced_accuracy: float
    final_base_rate: float
    final_confusion: dict[str, int]
    final_eval_windows: int
    initial_f1: float
    mean_accuracy: float
    mean_f1: float
    mean_roc_auc: float
    mean_base_rate: float
    best_accuracy: float
    target_metric: str
    target_value: float
    target_reached: bool
    rounds_not_judged: int
    streams_without_anomalies: dict[str, int]
    mean_aoi_s: float
    mean_latency_s: float
    updates_accepted: int
    updates_rejected: int
    byzantine_workers: int = 0
    byzantine_attack: str | None = None
    rejections: list[dict[str, object]]
    gas_total: int
    sp_utility_contract: float
    sp_utility_predicted_for_drawn_types: float
    sp_utility_measured: float
    workers_utility_contract: float
    budget_wei: int
    paid_wei: int
    reward_paid: float
    accuracy_per_reward: float
    f1_per_reward: float
    reclaimed_wei: int
    balance_checks: list[str]
    global_sha256: str
    time_scale: float
    warmup_slots: int
    seconds: dict[str, float]
    satisfaction: str
    learned_satisfaction: dict[str, object] | None

    def to_dict(self) -> dict[str, object]:
        """The JSON object of ``summary.json``."""
        return self.model_dump()


#: What ``aoichain compare`` puts side by side, one row per scheme.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "scheme",
    "rounds_run",
    "final_accuracy",
    "final_f1",
    "final_roc_auc",
    "final_pr_auc",
    "final_balanced_accuracy",
    "mean_accuracy",
    "mean_f1",
    "mean_roc_auc",
    "best_accuracy",
    "target_reached",
    "mean_aoi_s",
    "mean_latency_s",
    "sp_utility_contract",
    "sp_utility_predicted_for_drawn_types",
    "sp_utility_measured",
    "workers_utility_contract",
    "paid_wei",
    "reward_paid",
    "accuracy_per_reward",
    "f1_per_reward",
    "reclaimed_wei",
    "gas_total",
    "updates_accepted",
    "updates_rejected",
)
assert set(COMPARISON_COLUMNS) <= set(RunSummary.model_fields)
