"""Metrics for imbalanced anomaly data, and targets a constant predictor cannot reach.

Anomalies are rare, so accuracy rewards a constant guess: a model that calls
every window normal scores ``1 - base rate``. :func:`classification_metrics`
gives what judges such data (F1, precision, recall, ROC AUC, PR AUC,
balanced accuracy, the base rate and the confusion matrix), and
:func:`judge_target` decides whether a target is reached:

- the evaluation set must hold at least ``min_each`` windows of *each* class
  (otherwise the target is not judged: the run says so and goes on);
- the metric must reach the target value **and** beat the best constant
  predictor on the same set (:func:`chance_level`), so no constant
  predictor reaches any target, whatever value is asked.

Only metrics that a constant predictor cannot max out are offered as targets
(:data:`TARGET_METRICS`): recall alone is 1 for "everything is an anomaly",
and precision alone is maximised by flagging one sure window, so neither is
a target on its own (both are reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "TARGET_METRICS",
    "Metrics",
    "TargetMetric",
    "TargetStatus",
    "average_precision",
    "chance_level",
    "classification_metrics",
    "judge_target",
    "roc_auc",
]

TargetMetric = Literal["f1", "balanced_accuracy", "roc_auc", "pr_auc", "accuracy"]
#: The metrics a target may name (default: F1).
TARGET_METRICS: tuple[TargetMetric, ...] = (
    "f1",
    "balanced_accuracy",
    "roc_auc",
    "pr_auc",
    "accuracy",
)

#: A metric must beat the best constant predictor by more than this to count.
CHANCE_MARGIN = 1e-9


@dataclass(frozen=True)
class Metrics:
    """Quality of a model on a dataset (threshold 0.5 on the predicted probability).

    ``accuracy``, ``f1``, ``precision``, ``recall`` and ``balanced_accuracy``
    (the mean of the recalls of both classes) at the threshold; ``roc_auc``
    and ``pr_auc`` (average precision) from the scores; ``loss`` the mean
    binary cross-entropy; ``base_rate`` the share of anomalous windows; the
    confusion matrix ``tp, fp, tn, fn`` (anomaly = positive). A metric that a
    set cannot define is ``nan`` (ROC AUC with one class, PR AUC and recall
    without anomalies); F1 and precision are 0 without true positives.
    """

    accuracy: float
    f1: float
    roc_auc: float
    loss: float
    samples: int
    precision: float = math.nan
    recall: float = math.nan
    pr_auc: float = math.nan
    balanced_accuracy: float = math.nan
    base_rate: float = math.nan
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @property
    def positives(self) -> int:
        """Anomalous windows of the set."""
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        """Normal windows of the set."""
        return self.tn + self.fp

    def value(self, metric: str) -> float:
        """The value of a metric by name (e.g. ``"f1"``)."""
        return float(getattr(self, metric))


def roc_auc(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve by the Mann-Whitney rank statistic (ties get mean ranks).

    ``AUC = (sum of positives' ranks - P (P + 1) / 2) / (P N)``; ``nan`` if
    either class is absent.
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # Average rank of each run of equal scores.
    bounds = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [s.size]])
    run_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(run_rank, ends - starts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def classification_metrics(y_true: npt.ArrayLike, prob: npt.ArrayLike) -> Metrics:
    """Every :class:`Metrics` of anomaly probabilities ``prob`` against labels ``y_true``."""
    y = np.asarray(y_true).astype(bool).ravel()
    p = np.asarray(prob, dtype=np.float64).ravel()
    n = int(y.size)
    if n == 0:
        return Metrics(math.nan, math.nan, math.nan, math.nan, 0)
    pred = p >= 0.5
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = n - tp - fp - fn
    pos, neg = tp + fn, tn + fp
    eps = 1e-12
    loss = -np.mean(np.where(y, np.log(p + eps), np.log(1 - p + eps)))
    recall = tp / pos if pos else math.nan
    specificity = tn / neg if neg else math.nan
    return Metrics(
        accuracy=(tp + tn) / n,
        f1=2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        roc_auc=roc_auc(y, p),
        loss=float(loss),
        samples=n,
        precision=tp / (tp + fp) if tp else 0.0,
        recall=recall,
        pr_auc=average_precision(y, p),
        balanced_accuracy=(recall + specificity) / 2 if pos and neg else math.nan,
        base_rate=pos / n,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
    )


def average_precision(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the precision-recall curve as average precision (PR AUC).

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds,
    highest first; tied scores form one threshold, so a constant score gives
    exactly the base rate. ``nan`` without positives.
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    pos = int(y.sum())
    if pos == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.concatenate([s_sorted[1:] != s_sorted[:-1], [True]])
    tp = np.cumsum(y_sorted)[last].astype(np.float64)
    seen = (np.flatnonzero(last) + 1).astype(np.float64)
    precision = tp / seen
    recall = tp / pos
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def chance_level(metric: str, positives: int, negatives: int) -> float:
    """The best value any constant predictor reaches on a set of this make-up.

    A constant predictor gives every window the same score: all normal, or
    all anomalous, or any probability in between. With ``P`` anomalous and
    ``N`` normal windows: accuracy ``max(P, N) / (P + N)``; balanced accuracy
    and ROC AUC ``0.5``; F1 ``2P / (2P + N)`` (flag everything); PR AUC and
    precision the base rate ``P / (P + N)``; recall ``1``.
    """
    n = positives + negatives
    if n == 0:
        return math.nan
    if metric == "accuracy":
        return max(positives, negatives) / n
    if metric in ("balanced_accuracy", "roc_auc"):
        return 0.5
    if metric == "f1":
        return 2 * positives / (2 * positives + negatives) if positives else 0.0
    if metric in ("pr_auc", "precision"):
        return positives / n
    if metric == "recall":
        return 1.0 if positives else math.nan
    raise ValueError(f"unknown metric {metric!r}")


@dataclass(frozen=True)
class TargetStatus:
    """Whether a target was reached on one evaluation, and why (or why not).

    ``judged`` is false when the evaluation set held too few windows of a
    class to tell a model from a guess; ``chance`` is the best constant
    predictor's value of the metric on that set.
    """

    metric: str
    value: float
    target: float
    chance: float
    judged: bool
    reached: bool
    reason: str


def judge_target(
    metric: str,
    target: float,
    value: float,
    *,
    positives: int,
    negatives: int,
    min_each: int,
) -> TargetStatus:
    """Decide a target: reached only if judged, at least ``target`` and above chance.

    Parameters
    ----------
    metric : str
        One of :data:`TARGET_METRICS`.
    target : float
        The value asked for.
    value : float
        The model's value of ``metric`` on the evaluation set.
    positives, negatives : int
        Anomalous and normal windows of the evaluation set.
    min_each : int
        Fewest windows of each class needed to judge.
    """
    if metric not in TARGET_METRICS:
        raise ValueError(f"{metric!r} is not a target metric; offered: {', '.join(TARGET_METRICS)}")
    chance = chance_level(metric, positives, negatives)
    if positives < min_each or negatives < min_each:
        reason = (
            f"not judged: the evaluation set holds {positives} anomalous and {negatives} "
            f"normal windows, fewer than {min_each} of each"
        )
        return TargetStatus(metric, value, target, chance, False, False, reason)
    if not math.isfinite(value) or value < target:
        reason = f"{metric} {value:.4f} is below the target {target:.4f}"
        return TargetStatus(metric, value, target, chance, True, False, reason)
    if not value > chance + CHANCE_MARGIN:
        reason = (
            f"{metric} {value:.4f} reaches {target:.4f} but not the best constant "
            f"predictor's {chance:.4f}"
        )
        return TargetStatus(metric, value, target, chance, True, False, reason)
    reason = f"{metric} {value:.4f} >= {target:.4f} and above chance ({chance:.4f})"
    return TargetStatus(metric, value, target, chance, True, True, reason)
