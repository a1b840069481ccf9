"""The run's headline numbers: one typed record, written as ``summary.json``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RunSummary(BaseModel):
    """Headline numbers of a run (``summary.json``).

    Accuracy, F1 and ROC AUC are the global model's on the evaluation
    windows; AoI and latency are seconds of the slot clock; money is wei; the
    SP's utility is the contract's prediction, that prediction for the types
    the workers drew, and the realisation from measured AoI and latency.
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
    best_accuracy: float
    target_reached: bool
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
    reclaimed_wei: int
    balance_checks: list[str]
    global_sha256: str
    time_scale: float
    warmup_slots: int
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        """The JSON object of ``summary.json``."""
        return self.model_dump()


#: What ``aoichain compare`` puts side by side, one row per scheme.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "scheme",
    "rounds_run",
    "final_accuracy",
    "best_accuracy",
    "final_roc_auc",
    "mean_aoi_s",
    "mean_latency_s",
    "sp_utility_contract",
    "sp_utility_predicted_for_drawn_types",
    "sp_utility_measured",
    "workers_utility_contract",
    "paid_wei",
    "reclaimed_wei",
    "gas_total",
    "updates_accepted",
    "updates_rejected",
)
assert set(COMPARISON_COLUMNS) <= set(RunSummary.model_fields)
