"""Local training steps.

:func:`worker_step` is one optimiser step of one worker, what
:func:`~aoichain.fl.training.train_local` repeats.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from aoichain.fl.model import logits
from aoichain.fl.optim import OptimizerName, optimizer_step


def worker_step(
    names: Sequence[str],
    params: Sequence[torch.Tensor],
    slots: Sequence[Sequence[torch.Tensor]],
    feats: torch.Tensor,
    y: torch.Tensor,
    *,
    step: int,
    optimizer: OptimizerName,
    lr: float,
    momentum: float,
) -> torch.Tensor:
    """One optimiser step of one worker on a batch; updates ``params`` and ``slots`` in place.

    Parameters
    ----------
    names, params : sequences
        The weights' names (as in the model's ``state_dict``) and tensors.
    slots : sequence
        Their optimiser state (:func:`~aoichain.fl.optim.init_slots`).
    feats, y : Tensor
        The batch's :func:`~aoichain.fl.model.features` ``(B, window, 2*S)``
        and labels ``(B,)``.
    step : int
        The optimiser's step number, from 1.

    Returns
    -------
    Tensor
        The batch's mean loss before the step (a 0-d tensor).
    """
    leaves = [p.detach().requires_grad_() for p in params]
    loss = F.binary_cross_entropy_with_logits(
        logits(dict(zip(names, leaves, strict=True)), feats), y
    )
    grads = torch.autograd.grad(loss, leaves)
    optimizer_step(optimizer, params, grads, slots, step=step, lr=lr, momentum=momentum)
    return loss.detach()
