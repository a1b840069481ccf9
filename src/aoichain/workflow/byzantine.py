"""Byzantine workers: who attacks, and what each attack does to its update.

``[faults] byzantine = { workers = K, attack = "..." }`` makes ``K`` workers,
chosen once per run from the task's seed (:func:`choose_byzantine`), poison
what they send every round. They stay honest about *what* they send: each
signs a valid record of its poisoned update, the chains accept it, and only
the aggregation rule stands between it and the global model.

The attacks, as pure functions of the weights (``model`` is the global model
the worker trained from, ``update`` what honest training gave):

- ``sign_flip``: :func:`flip_sign`, ``model - s (update - model)``: the
  delta negated and scaled by ``s`` (``sign_flip_scale``);
- ``scale``: :func:`scale_delta`, ``model + lambda (update - model)``: the
  delta scaled by ``lambda`` (``scale_factor``);
- ``noise``: :func:`add_noise`, ``update + N(0, sigma^2)`` on every weight
  (``noise_std``), drawn from the seed, the round and the worker;
- ``label_flip``: :func:`flip_labels`, every label of the worker's cache
  flipped (``y -> 1 - y``) before it trains; the update is honest training
  on poisoned data.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aoichain.fl import Dataset, deserialize_state, serialize_state

Attack = Literal["sign_flip", "scale", "noise", "label_flip"]
ATTACKS: tuple[Attack, ...] = ("sign_flip", "scale", "noise", "label_flip")
#: The attacks that change the update after training (label_flip changes the data before).
UPDATE_ATTACKS: tuple[Attack, ...] = ("sign_flip", "scale", "noise")
Weights = npt.NDArray[Any]


class ByzantineSettings(BaseModel):
    """``[faults] byzantine``: how many workers attack, how, and how hard.

    Each strength applies to its own attack only; setting another attack's
    strength is an error (it would be silently ignored otherwise).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(
        ge=0, description="How many workers attack (at most all of them), chosen from the seed."
    )
    attack: Attack = Field(description="sign_flip, scale, noise or label_flip.")
    sign_flip_scale: float = Field(
        default=1.0,
        gt=0,
        allow_inf_nan=False,
        description="s of sign_flip: the update becomes model - s (update - model).",
    )
    scale_factor: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="lambda of scale: the update becomes model + lambda (update - model).",
    )
    noise_std: float = Field(
        default=1.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "sigma of noise: Gaussian noise of this standard deviation on every weight "
            "(the untrained model's weights spread 0.065)."
        ),
    )

    @model_validator(mode="after")
    def _strength_of_this_attack(self) -> ByzantineSettings:
        own = {"sign_flip": "sign_flip_scale", "scale": "scale_factor", "noise": "noise_std"}
        for attack, key in own.items():
            default = type(self).model_fields[key].default
            if attack != self.attack and getattr(self, key) != default:
                raise ValueError(
                    f"{key} applies to attack = {attack!r} only, not to {self.attack!r}"
                )
        return self


def choose_byzantine(n_workers: int, k: int, seed: int) -> frozenset[int]:
    """The ``k`` attacking workers among ``n_workers`` (indices), chosen from ``seed``.

    Workers are ranked by a hash of the seed and their index and the first
    ``k`` attack, so the choice is the same every time it is asked, and the
    attackers for ``k`` are among those for ``k + 1`` (a sweep over the
    Byzantine fraction adds attackers, never swaps them).
    """
    if not 0 <= k <= n_workers:
        raise ValueError(f"k must be in [0, {n_workers}], got {k}")

    def rank(index: int) -> bytes:
        return hashlib.sha256(f"aoichain/byzantine/{seed}/{index}".encode()).digest()

    return frozenset(sorted(range(n_workers), key=rank)[:k])


def flip_sign(model: Weights, update: Weights, scale: float) -> Weights:
    """``model - scale (update - model)``: the delta negated and scaled (float64)."""
    base = np.asarray(model, dtype=np.float64)
    return base - scale * (np.asarray(update, dtype=np.float64) - base)


def scale_delta(model: Weights, update: Weights, factor: float) -> Weights:
    """``model + factor (update - model)``: the delta scaled (float64)."""
    base = np.asarray(model, dtype=np.float64)
    return base + factor * (np.asarray(update, dtype=np.float64) - base)


def add_noise(update: Weights, std: float, rng: np.random.Generator) -> Weights:
    """``update`` plus Gaussian noise of standard deviation ``std`` on every entry (float64)."""
    weights = np.asarray(update, dtype=np.float64)
    return weights + rng.normal(0.0, std, size=weights.shape)


def flip_labels(dataset: Dataset) -> Dataset:
    """The same windows with every label flipped (``y -> 1 - y``)."""
    return Dataset(x=dataset.x, y=(1.0 - dataset.y).astype(dataset.y.dtype), t_end=dataset.t_end)


def attack_blob(
    settings: ByzantineSettings, model: bytes, update: bytes, rng: np.random.Generator
) -> bytes:
    """The bytes a Byzantine worker sends instead of ``update`` (``label_flip``: unchanged).

    Each tensor is attacked in float64 and cast back to its dtype; ``rng``
    draws the noise (tensors in name order).
    """
    if settings.attack not in UPDATE_ATTACKS:
        return update
    base, trained = deserialize_state(model), deserialize_state(update)
    out = {}
    for name, weights in trained.items():
        if settings.attack == "sign_flip":
            poisoned = flip_sign(base[name], weights, settings.sign_flip_scale)
        elif settings.attack == "scale":
            poisoned = scale_delta(base[name], weights, settings.scale_factor)
        else:
            poisoned = add_noise(weights, settings.noise_std, rng)
        out[name] = poisoned.astype(weights.dtype)
    return serialize_state(out)


def noise_rng(seed: int, round_no: int, worker_index: int) -> np.random.Generator:
    """The generator of one worker's noise in one round (the same on every replay)."""
    return np.random.default_rng([seed, round_no, worker_index, 0x62797A])


def describe_attack(settings: ByzantineSettings) -> str:
    """The attack and its strength in words, e.g. ``"sign_flip (s = 1)"``."""
    strength = {
        "sign_flip": f"s = {settings.sign_flip_scale:g}",
        "scale": f"lambda = {settings.scale_factor:g}",
        "noise": f"sigma = {settings.noise_std:g}",
        "label_flip": "every label flipped",
    }[settings.attack]
    return f"{settings.attack} ({strength})"
