"""Local optimisers, written out: SGD with momentum and Adam, as ``torch.optim`` computes them.

Each step below calls the same tensor operations, in the same order and with
the same scalars, as ``torch.optim.SGD(params, lr, momentum)`` and
``torch.optim.Adam(params, lr)`` with their other options at the defaults
(their single-tensor CPU path, ``_single_tensor_sgd`` and
``_single_tensor_adam`` in torch 2.13), so a model trained either way has the
same bytes; ``tests/fl/test_fl_optim.py`` checks it. Writing them out keeps
``torch.optim`` out of training: in a fresh process its first use imports
``torch._dynamo`` (about a second), and each of its steps costs more Python
than the arithmetic.

The state tensors (:func:`init_slots`) have the parameters' shapes, so the
same step serves one worker's tensors and ``K`` workers' stacked ones (the
operations are elementwise; a tensor's elements do not interact).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

OptimizerName = Literal["sgd", "adam"]
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def init_slots(
    optimizer: OptimizerName, params: Sequence[torch.Tensor], momentum: float
) -> list[list[torch.Tensor]]:
    """Zeroed optimiser state per parameter: SGD's momentum buffer, or Adam's two averages.

    SGD without momentum keeps no state (an empty list per parameter).
    """
    if optimizer == "adam":
        return [[torch.zeros_like(p), torch.zeros_like(p)] for p in params]
    if momentum != 0:
        return [[torch.zeros_like(p)] for p in params]
    return [[] for _ in params]


@torch.no_grad()
def optimizer_step(
    optimizer: OptimizerName,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    slots: Sequence[Sequence[torch.Tensor]],
    *,
    step: int,
    lr: float,
    momentum: float,
) -> None:
    """Update ``params`` and ``slots`` in place with ``grads``: optimiser step number ``step``.

    Parameters
    ----------
    optimizer : {"sgd", "adam"}
        SGD with (heavy-ball) ``momentum``, or Adam with betas (0.9, 0.999)
        and eps 1e-8 (``momentum`` is then ignored).
    params, grads, slots : sequences
        The parameters, their gradients and their state (:func:`init_slots`),
        position by position.
    step : int
        1 on the first step (SGD's buffer then starts as the gradient, Adam's
        bias corrections count from it).
    lr : float
        Learning rate.
    """
    for param, grad, state in zip(params, grads, slots, strict=True):
        if optimizer == "adam":
            exp_avg, exp_avg_sq = state
            beta1, beta2 = ADAM_BETAS
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step_size = lr / (1 - beta1**step)
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
            param.addcdiv_(exp_avg, denom, value=-step_size)
        elif momentum != 0:
            (buf,) = state
            if step == 1:
                buf.copy_(grad)
            else:
                buf.mul_(momentum).add_(grad, alpha=1)
            param.add_(buf, alpha=-lr)
        else:
            param.add_(grad, alpha=-lr)
