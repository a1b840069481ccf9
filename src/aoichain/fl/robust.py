"""The numeric core of the whole-update robust rules: norm clipping and (multi-)Krum.

Plain functions over a matrix of ``K`` flattened update deltas (shape
``(K, D)``, float64: each worker's update minus the global model it trained
from). They are unweighted and do not depend on the order of the rows, so
the rules built on them (:mod:`aoichain.fl.aggregation`) give the same bytes
whatever order the updates arrive in; where two rows tie, the row that comes
first in lexicographic order wins, not the one that arrived first.

- :func:`delta_norms`, :func:`clip_deltas`: each delta scaled down (never up)
  to a bound, by default the median of the norms (Sun et al., 2019, "Can you
  really backdoor federated learning?").
- :func:`krum_scores`, :func:`krum_select`: Krum and multi-Krum (Blanchard et
  al., 2017): a delta's score is the sum of squared distances to its
  ``K - f - 2`` nearest other deltas; Krum keeps the lowest-scored one,
  multi-Krum the ``m`` lowest (scored once, as Flower's ``Krum`` strategy).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aoichain.errors import InvalidInput

F64 = npt.NDArray[np.float64]


def _matrix(deltas: F64) -> F64:
    matrix = np.asarray(deltas, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < 1:
        raise InvalidInput(
            f"The deltas must be a (K, D) matrix with K >= 1. Got shape {matrix.shape} instead."
        )
    return matrix


def delta_norms(deltas: F64) -> F64:
    """The Euclidean norm of each row of ``deltas`` (``(K, D)`` -> ``(K,)``)."""
    return np.sqrt(np.square(_matrix(deltas)).sum(axis=1))


def clip_deltas(deltas: F64, bound: float | None = None) -> F64:
    """Each delta scaled by ``min(1, bound / norm)``: no norm grows, none exceeds ``bound``.

    Parameters
    ----------
    deltas : ndarray, shape (K, D)
        One flattened update delta per row.
    bound : float, optional
        Largest norm a delta keeps (> 0). Default: the median of the ``K``
        norms, so at least half the deltas pass unchanged and a scaled-up
        one counts no more than a typical one.

    Returns
    -------
    ndarray, shape (K, D)
        The clipped deltas (rows with norm 0 stay 0).
    """
    matrix = _matrix(deltas)
    norms = delta_norms(matrix)
    limit = float(np.median(norms)) if bound is None else float(bound)
    if not (np.isfinite(limit) and limit >= 0.0):
        raise InvalidInput(
            f"The 'bound' parameter of clip_deltas must be a finite float >= 0. Got {bound!r}."
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.where(norms > limit, limit / norms, 1.0)
    return matrix * factors[:, None]


def krum_neighbours(k: int, f: int) -> int:
    """How many nearest deltas Krum sums over: ``K - f - 2``, at least 1 (at most ``K - 1``).

    With fewer than ``2 f + 3`` deltas Krum's guarantee does not hold; the
    rule still runs (a round that lost workers to dropouts must not stop
    the task) on as many neighbours as there are.
    """
    return max(1, min(k - 1, k - f - 2))


def krum_scores(deltas: F64, f: int) -> F64:
    """Krum's score of each delta: the sum of squared distances to its nearest others.

    Parameters
    ----------
    deltas : ndarray, shape (K, D)
        One flattened update delta per row.
    f : int
        Byzantine workers assumed (>= 0); a delta's ``K - f - 2`` nearest
        other deltas count (:func:`krum_neighbours`).

    Returns
    -------
    ndarray, shape (K,)
        Lower is more central; ``0`` for ``K = 1``.
    """
    matrix = _matrix(deltas)
    if f < 0:
        raise InvalidInput(f"The 'f' parameter of Krum must be an int >= 0. Got {f!r} instead.")
    k = matrix.shape[0]
    if k == 1:
        return np.zeros(1)
    nearest = krum_neighbours(k, f)
    scores = np.empty(k)
    for i in range(k):
        # Differences row by row (not the Gram-matrix shortcut): the distance of i to j
        # is then bitwise the same whatever the rows' order.
        distances = np.square(matrix - matrix[i]).sum(axis=1)
        others = np.sort(np.delete(distances, i))
        scores[i] = others[:nearest].sum()
    return scores


def krum_select(deltas: F64, f: int, m: int = 1) -> npt.NDArray[np.intp]:
    """Indices of the ``m`` lowest-scored deltas (Krum: ``m = 1``; multi-Krum: more).

    Ties are broken by the deltas themselves (lexicographic order of the
    rows), so the choice does not depend on the order of the rows.

    Parameters
    ----------
    deltas : ndarray, shape (K, D)
        One flattened update delta per row.
    f : int
        Byzantine workers assumed (>= 0).
    m : int
        How many to keep, ``1 <= m``; more than ``K`` keeps all.

    Returns
    -------
    ndarray of int, shape (min(m, K),)
        Row indices, best first.
    """
    matrix = _matrix(deltas)
    if m < 1:
        raise InvalidInput(f"The 'm' parameter of multi-Krum must be an int >= 1. Got {m!r}.")
    scores = krum_scores(matrix, f)
    # np.lexsort sorts by its last key first: the score, then the row's entries in order.
    order = np.lexsort(np.vstack([matrix.T[::-1], scores]))
    return order[: min(m, matrix.shape[0])]
