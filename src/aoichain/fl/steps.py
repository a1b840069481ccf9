"""Local training steps: one worker's, and many workers' at once with the same bytes.

:func:`worker_step` is one optimiser step of one worker, what
:func:`~aoichain.fl.training.train_local` repeats. :func:`train_stacked`
trains ``K`` workers together: their weights are stacked (shape ``(K, ...)``)
and each step runs every worker's batch through the network at once, the two
convolutions as grouped convolutions (``groups=K``, worker ``k``'s channels
in group ``k``). Each worker's numbers come out bit for bit as from its own
:func:`worker_step`, because every operation is arranged to run the same
kernel, in the same order, on each worker's numbers. What that takes, found
by measurement on torch 2.13 (CPU, one thread; AVX-512, and AVX2 forced
through ``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA`` and
``MKL_ENABLE_INSTRUCTIONS``):

- **Convolutions.** torch runs a convolution on oneDNN or on its own native
  kernel depending on the shapes (:func:`_on_onednn`). Where a worker's
  convolutions run on oneDNN with a kernel wider than 1, the grouped ones
  match them once each group's channels are zero-padded to a multiple of 16
  (oneDNN's channel block; unpadded, e.g. 5 channels per group, the sums are
  ordered otherwise and differ by ~1e-7). Elsewhere (the native kernel, for
  one-window batches of short windows; a width-1 kernel, which oneDNN runs
  as a matrix product, grouped in another order), and for a worker alone in
  its group, the workers take that step one by one with :func:`worker_step`
  (:func:`_grouped_is_exact`).
- **The head.** ``F.linear`` of a ``(B, 2H+2S)`` batch with one output runs
  on MKL as a matrix-vector product; ``bmm`` or ``einsum`` over the stacked
  heads sum in another order (up to 3e-6 apart on the logits), and even the
  same call on a slice of a stacked tensor differs when the slice does not
  start on 64 bytes (MKL peels unaligned elements). So the head's forward
  and its weight gradient run per worker on aligned copies
  (:class:`_HeadLoss`); its input gradient (products, no sums) and bias
  gradient (a row sum) are batched.
- **Sigmoid and the loss.** ``sigmoid`` and ``log1p`` have vectorised and
  scalar code paths that round differently, so the position of an element
  in a tensor decides its bits; they too run per worker, on its ``(B,)``
  logits.
- **Ragged batches.** Workers whose batch has another size at a step (a
  last, partial batch) form their own group: padding a batch with masked
  rows would change the order of the sums over the batch.
- **Optimiser.** Elementwise (:mod:`aoichain.fl.optim`), so stacking does
  not change it.

``torch.func`` (``grad`` and ``vmap`` over ``functional_call``) was measured
and not used: even for one worker, ``torch.func.grad`` gives other bits than
``torch.autograd`` (gradients up to 5e-7 apart after one step of the default
model), and ``vmap``'s convolutions are unpadded grouped ones.

Everything runs in the caller's :func:`~aoichain.fl.model.deterministic_torch`
(one thread, deterministic kernels), as the per-worker path does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional as F

from aoichain.fl.model import logits
from aoichain.fl.optim import OptimizerName, init_slots, optimizer_step

CHANNEL_BLOCK = 16  # a grouped convolution's channels per group are padded to a multiple


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


def _on_onednn(batch: int, channels: int, length: int, kernel: int) -> bool:
    """Whether torch runs a one-thread float32 CPU ``conv1d`` (``groups=1``) on oneDNN.

    torch's ``ConvParams::use_mkldnn`` (``aten/src/ATen/native/Convolution.cpp``)
    for a conv1d, which it runs as a conv2d of height 1: oneDNN unless the
    kernel is 1 wide and the batch below 16, or the batch is one window of at
    most 20480 numbers. Checked against torch 2.13 on 135 shapes.
    """
    return (batch >= 16 or kernel != 1) and (batch > 1 or channels * length > 20480)


def _grouped_is_exact(batch: int, channels: int, window: int, hidden: int, kernel: int) -> bool:
    """Whether the grouped convolutions of a step reproduce each worker's own, bit for bit.

    They do where each worker's two convolutions run on oneDNN
    (:func:`_on_onednn`), with a kernel wider than 1: oneDNN runs width-1
    convolutions as matrix products, whose grouped form sums in another order.
    """
    return (
        kernel > 1
        and _on_onednn(batch, channels, window, kernel)
        and _on_onednn(batch, hidden, window - kernel + 1, kernel)
    )


def _padded(channels: int) -> int:
    return -(-channels // CHANNEL_BLOCK) * CHANNEL_BLOCK


def _aligned(t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` (``(K, ...)``) in which each ``t[k]`` starts on a 64-byte boundary.

    MKL's matrix-vector kernels order their sums by the operands' addresses;
    a tensor of its own (as in the per-worker path) starts on 64 bytes.
    """
    k, m, size = t.shape[0], t[0].numel(), t.element_size()
    flat = torch.empty(k * _padded(m) + 64 // size, dtype=t.dtype)
    skip = (-flat.data_ptr() % 64) // size  # 0 with torch's allocator, which aligns on 64
    rows = flat[skip : skip + k * _padded(m)].view(k, -1)[:, :m]
    rows.copy_(t.reshape(k, m))
    return rows.view(t.shape)


class _HeadLoss(torch.autograd.Function):
    """Each worker's mean BCE loss from its pooled features, with the per-worker path's bits.

    Inputs: ``pooled`` ``(K, B, D)``, head ``weight`` ``(K, 1, D)`` and
    ``bias`` ``(K, 1)``, labels ``y`` ``(K, B)``. Output: the ``K`` losses.
    The products that sum over ``D`` or ``B`` run per worker on aligned
    operands (:func:`_aligned`), as ``F.linear`` and its backward do; the
    rest is batched.
    """

    @staticmethod
    def forward(
        ctx: Any, pooled: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        pooled, weight = _aligned(pooled), _aligned(weight)
        losses, probs = [], []
        for k in range(pooled.shape[0]):
            logit = F.linear(pooled[k], weight[k], bias[k]).squeeze(1)
            losses.append(F.binary_cross_entropy_with_logits(logit, y[k]))
            probs.append(torch.sigmoid(logit))
        ctx.save_for_backward(pooled, weight, torch.stack(probs), y)
        return torch.stack(losses)

    @staticmethod
    def backward(ctx: Any, *grad_losses: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        pooled, weight, probs, y = ctx.saved_tensors
        # As binary_cross_entropy_with_logits_backward: (p - y) * grad, then / B.
        g = _aligned(((probs - y) * grad_losses[0].unsqueeze(1)).div_(y.shape[1]).unsqueeze(2))
        # As addmm's backward for a (D, 1) weight.t(): grad.t().mm(input), per worker.
        grad_weight = torch.stack([g[k].t().mm(pooled[k]) for k in range(g.shape[0])])
        return torch.bmm(g, weight), grad_weight, g.sum(1), None


def _group_losses(
    params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """:func:`~aoichain.fl.model.logits` and the mean loss for ``K`` workers at once.

    ``params`` are stacked ``(K, ...)``; ``x`` holds the batches' features
    channels-first and batch-major, ``(B, K, 2S, window)``; ``y`` is ``(K, B)``.
    """
    _, k, c, _ = x.shape
    w1, b1 = params["conv1.weight"], params["conv1.bias"]
    w2, b2 = params["conv2.weight"], params["conv2.bias"]
    h = w1.shape[1]
    cp, hp = _padded(c), _padded(h)
    if (cp, hp) != (c, h):  # zero channels: they add exact zeros to every sum
        x_in = F.pad(x, (0, 0, 0, cp - c))
        w1 = F.pad(w1, (0, 0, 0, cp - c, 0, hp - h))
        w2 = F.pad(w2, (0, 0, 0, hp - h, 0, hp - h))
        b1, b2 = F.pad(b1, (0, hp - h)), F.pad(b2, (0, hp - h))
    else:
        x_in = x
    z = torch.relu(F.conv1d(x_in.flatten(1, 2), w1.flatten(0, 1), b1.flatten(), groups=k))
    z = torch.relu(F.conv1d(z, w2.flatten(0, 1), b2.flatten(), groups=k))
    z = z.unflatten(1, (k, hp))[:, :, :h]
    pooled = torch.cat([z.mean(dim=3), z[..., -1], x[..., -1]], dim=2)
    loss: torch.Tensor = _HeadLoss.apply(
        pooled.transpose(0, 1).contiguous(), params["head.weight"], params["head.bias"], y
    )
    return loss


def train_stacked(
    params: Mapping[str, torch.Tensor],
    feats: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    seeds: Sequence[int],
    *,
    epochs: int,
    batch_size: int,
    optimizer: OptimizerName,
    lr: float,
    momentum: float,
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Train ``K`` copies of ``params``, copy ``k`` on ``(feats[k], labels[k])`` with ``seeds[k]``.

    Worker ``k`` makes ``epochs`` passes over its data in the orders
    ``torch.randperm`` draws from a generator seeded with ``seeds[k]``, in
    batches of ``batch_size`` windows (the last of a pass takes the rest), one
    optimiser step per batch, as :func:`~aoichain.fl.training.train_local`
    does. All workers take their ``s``-th step together; one with fewer steps
    drops out when done.

    Parameters
    ----------
    params : mapping of str to Tensor
        The starting (global) weights by name, float32.
    feats : sequence of Tensor
        Per worker, its windows' :func:`~aoichain.fl.model.features`,
        ``(n_k, window, 2*S)``, ``n_k >= 1``.
    labels : sequence of Tensor
        Per worker, its ``(n_k,)`` float32 labels.
    seeds : sequence of int
        Per worker, the shuffling seed.

    Returns
    -------
    (stacked, losses)
        The trained weights by name, stacked ``(K, ...)``, and each worker's
        mean loss over its last pass.
    """
    k_all = len(feats)
    sizes = [int(f.shape[0]) for f in feats]
    if not k_all or min(sizes) < 1:
        raise ValueError("train_stacked needs workers, each with at least one window")
    per_pass = [-(-n // batch_size) for n in sizes]
    rank, rows, batch = _schedule(sizes, per_pass, seeds, epochs, batch_size)
    all_feats = torch.cat([feats[k] for k in rank])
    channels_first = all_feats.transpose(1, 2).contiguous()
    all_y = torch.cat([labels[k] for k in rank])
    window, channels = all_feats.shape[1:]
    hidden, _, kernel = params["conv1.weight"].shape

    names = list(params)
    # Rows on 64 bytes, so that a worker's row is a tensor as good as its own (_aligned).
    stacked = [_aligned(params[n].expand(k_all, *params[n].shape)) for n in names]
    slots = init_slots(optimizer, stacked, momentum)
    tensors = [*stacked, *(t for per in slots for t in per)]
    totals = [0.0] * k_all
    for s in range(batch.shape[1]):
        active = int(np.count_nonzero(batch[:, s]))
        for b in np.unique(batch[:active, s]).tolist():
            members = np.flatnonzero(batch[:active, s] == b)
            last_pass = [s >= (epochs - 1) * per_pass[rank[i]] for i in members]
            if len(members) == 1 or not _grouped_is_exact(b, channels, window, hidden, kernel):
                for i, last in zip(members.tolist(), last_pass, strict=True):
                    idx = rows[i, s, :b]
                    loss = worker_step(
                        names,
                        [t[i] for t in stacked],
                        [[t[i] for t in per] for per in slots],
                        all_feats[idx],
                        all_y[idx],
                        step=s + 1,
                        optimizer=optimizer,
                        lr=lr,
                        momentum=momentum,
                    )
                    if last:
                        totals[i] += float(loss) * b
                continue
            # The group's rows: views if they are the prefix of workers still training,
            # else copies, put back after the step.
            whole = len(members) == active
            sel = torch.from_numpy(members)
            group = [t[:active] if whole else t.index_select(0, sel) for t in tensors]
            params_g, slots_g = group[: len(names)], group[len(names) :]
            leaves = [t.detach().requires_grad_() for t in params_g]
            idx = rows[sel, s, :b]
            losses = _group_losses(
                dict(zip(names, leaves, strict=True)), channels_first[idx.T], all_y[idx]
            )
            # The sum of the workers' losses: each worker's gradient is its own (they share
            # no parameter), and a scalar output spares autograd a symbolic-shapes import.
            grads = torch.autograd.grad(losses.sum(), leaves)
            n_slots = len(slots[0])
            optimizer_step(
                optimizer,
                params_g,
                grads,
                [slots_g[j * n_slots : (j + 1) * n_slots] for j in range(len(names))],
                step=s + 1,
                lr=lr,
                momentum=momentum,
            )
            if not whole:
                for t, g in zip(tensors, group, strict=True):
                    t.index_copy_(0, sel, g)
            for i, last, loss in zip(members.tolist(), last_pass, losses.tolist(), strict=True):
                if last:
                    totals[i] += loss * b
    back = torch.from_numpy(np.argsort(rank))
    out = {n: t.index_select(0, back) for n, t in zip(names, stacked, strict=True)}
    return out, [totals[i] / sizes[rank[i]] for i in back.tolist()]


def _schedule(
    sizes: Sequence[int],
    per_pass: Sequence[int],
    seeds: Sequence[int],
    epochs: int,
    batch_size: int,
) -> tuple[npt.NDArray[np.int64], torch.Tensor, npt.NDArray[np.int64]]:
    """Who trains on what at each step of :func:`train_stacked`.

    Returns ``rank``, the workers by decreasing step count (so the workers
    still training at a step are a prefix); ``rows`` ``(K, steps,
    batch_size)``, where ``rows[i, s, :b]`` are the rows, in the workers' data
    concatenated in ``rank`` order, of the ``s``-th batch of worker
    ``rank[i]``; and ``batch`` ``(K, steps)``, that batch's size ``b`` (0 once
    the worker is done). Worker ``k``'s orders are ``torch.randperm`` draws
    from a generator seeded with ``seeds[k]``, one per pass, as in
    :func:`~aoichain.fl.training.train_local`.
    """
    steps = np.array([epochs * p for p in per_pass])
    rank = np.argsort(-steps, kind="stable")
    rows = torch.zeros((len(sizes), int(steps.max()), batch_size), dtype=torch.int64)
    batch = np.zeros((len(sizes), int(steps.max())), dtype=np.int64)
    offset = 0
    for i, k in enumerate(rank):
        n, p = sizes[k], per_pass[k]
        gen = torch.Generator().manual_seed(seeds[k])
        for e in range(epochs):
            rows[i, e * p : (e + 1) * p].view(-1)[:n] = torch.randperm(n, generator=gen) + offset
            batch[i, e * p : (e + 1) * p] = batch_size
            batch[i, (e + 1) * p - 1] = n - (p - 1) * batch_size
        offset += n
    return rank, rows, batch
