"""The anomaly model, its specification, and its deterministic byte format.

Everything that travels between workers and the aggregator is a byte blob
made by :func:`serialize_state`: a fixed header, then for each tensor (sorted
by name) its name, dtype, shape and raw little-endian bytes. The same weights
always give the same bytes, hence the same sha256 — which is what a ledger
records. Nothing here uses ``pickle`` or ``torch.save``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn
from torch.nn import functional as F

from aoichain.errors import InvalidInput
from aoichain.fl.errors import MalformedUpdate
from aoichain.fl.streams import SensorStream

MAGIC = b"AOIW"
FORMAT_VERSION = 1
_DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i8"),
    4: np.dtype("<i4"),
}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}
CLIP = 8.0  # standardised inputs are clipped to [-CLIP, CLIP]: a drifting sensor stays bounded


def sha256_hex(data: bytes) -> str:
    """Hex digest (64 characters) of the sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class ModelSpec(BaseModel):
    """What every worker and the aggregator must agree on to exchange updates.

    Its hash (:meth:`sha256`) is the model-spec hash a task publishes.

    Parameters
    ----------
    n_sensors : int
        Sensor columns ``S`` of the streams.
    window : int
        Records per input window.
    hidden : int
        Channels of the convolutional layers.
    kernel : int
        Width of the convolutions, records.
    center, scale : tuple of float
        The normaliser: input ``v`` of sensor ``s`` enters the network as
        ``clip((v - center[s]) / scale[s], -8, 8)``, then times the column mask,
        so a masked column reads 0 (its typical value). Fixed in the spec so
        every client standardises alike; build them with :func:`fit_normaliser`
        on data the publisher may see (e.g. the twins' views), never on
        sensitive data. Empty tuples mean no standardisation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_sensors: int = Field(ge=1, le=256)
    window: int = Field(default=16, ge=2, le=1024)
    hidden: int = Field(default=16, ge=1, le=512)
    kernel: int = Field(default=5, ge=1, le=64)
    center: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if (self.center or self.scale) and not (
            len(self.center) == len(self.scale) == self.n_sensors
        ):
            raise ValueError(
                f"center and scale must both have n_sensors={self.n_sensors} entries "
                f"(got {len(self.center)} and {len(self.scale)})"
            )
        if any(not s > 0 for s in self.scale):
            raise ValueError("every scale must be > 0")
        if 2 * (self.kernel - 1) >= self.window:
            raise ValueError(
                f"window={self.window} is too short for two convolutions of kernel={self.kernel}"
            )
        return self

    def canonical_json(self) -> bytes:
        """Sorted-key, whitespace-free JSON of the spec: the bytes :meth:`sha256` hashes."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        ).encode()

    def sha256(self) -> bytes:
        """The 32-byte sha256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json()).digest()


def fit_normaliser(
    streams: Sequence[SensorStream],
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Robust per-sensor statistics for :class:`ModelSpec`: median and IQR / 1.349.

    Only unmasked columns count (a twin's masked column contributes nothing);
    a sensor nobody may see gets ``(0, 1)``. A constant sensor gets scale 1.
    Values are rounded to 6 significant digits so the spec's JSON is short and
    the same on every machine.

    Returns
    -------
    (center, scale)
        Tuples of ``S`` floats.
    """
    if not streams:
        raise InvalidInput("fit_normaliser needs at least one stream.")
    n = streams[0].n_sensors
    center, scale = [], []
    for s in range(n):
        parts = [st.values[:, s] for st in streams if st.mask[s] and len(st)]
        if not parts:
            center.append(0.0)
            scale.append(1.0)
            continue
        col = np.concatenate(parts).astype(np.float64)
        q25, q50, q75 = np.percentile(col, [25, 50, 75])
        spread = (q75 - q25) / 1.349
        if not spread > 1e-9 * max(1.0, abs(q50)):
            spread = float(np.std(col)) or 1.0
        center.append(float(f"{q50:.6g}"))
        scale.append(float(f"{spread:.6g}"))
    return tuple(center), tuple(scale)


def normaliser(spec: ModelSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The spec's ``(center, scale)`` as float32 tensors of shape ``(S,)`` (0 and 1 if unset)."""
    s = spec.n_sensors
    center = torch.tensor(spec.center or [0.0] * s, dtype=torch.float32)
    scale = torch.tensor(spec.scale or [1.0] * s, dtype=torch.float32)
    return center, scale


def features(x: torch.Tensor, center: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """What the network sees of windows ``x`` (``(B, window, 2*S)``): the same shape.

    The ``S`` values standardised by ``(center, scale)``, clipped to
    ``[-CLIP, CLIP]`` and multiplied by the mask, then the ``S`` mask channels.
    It involves no weight, so a trainer may compute it once per dataset.
    """
    s = center.shape[0]
    mask = x[..., s:]
    z = torch.clamp((x[..., :s] - center) / scale, -CLIP, CLIP) * mask
    return torch.cat([z, mask], dim=-1)


def logits(params: Mapping[str, torch.Tensor], feats: torch.Tensor) -> torch.Tensor:
    """The network's anomaly score (a logit) per window, shape ``(B,)``, from :func:`features`.

    ``params`` holds the tensors of :class:`AnomalyNet`'s ``state_dict`` by
    name. The batched trainer (:func:`aoichain.fl.steps.train_stacked`)
    mirrors these steps for many workers at once; change both together.
    """
    h = torch.relu(F.conv1d(feats.transpose(1, 2), params["conv1.weight"], params["conv1.bias"]))
    h = torch.relu(F.conv1d(h, params["conv2.weight"], params["conv2.bias"]))
    pooled = torch.cat([h.mean(dim=2), h[:, :, -1], feats[:, -1, :]], dim=1)
    return F.linear(pooled, params["head.weight"], params["head.bias"]).squeeze(1)


class AnomalyNet(nn.Module):
    """Two 1-D convolutions over a window, pooled, then a linear score (a logit).

    Input ``x`` has shape ``(B, window, 2*S)``: ``S`` raw sensor values then
    ``S`` column-mask channels (1 = observed, 0 = masked). The values are
    standardised by the spec's normaliser and multiplied by the mask; the
    network sees the standardised values, the mask, and the last record
    directly (the label belongs to the window's last record). The forward
    pass is :func:`features` then :func:`logits`.
    """

    center: torch.Tensor
    scale: torch.Tensor

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        s, h, k = spec.n_sensors, spec.hidden, spec.kernel
        center, scale = normaliser(spec)
        self.register_buffer("center", center, persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.conv1 = nn.Conv1d(2 * s, h, k)
        self.conv2 = nn.Conv1d(h, h, k)
        self.head = nn.Linear(2 * h + 2 * s, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits(dict(self.named_parameters()), features(x, self.center, self.scale))


def build_network(spec: ModelSpec) -> AnomalyNet:
    """A fresh (randomly initialised from torch's global RNG) network for ``spec``."""
    return AnomalyNet(spec)


@contextmanager
def deterministic_torch(seed: int, threads: int = 1) -> Iterator[None]:
    """Seed torch, force deterministic kernels and ``threads`` CPU threads, then restore.

    The global RNG state is forked, so a caller's random stream is untouched.
    """
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if prev_threads != threads:
            torch.set_num_threads(threads)
        _set_deterministic(True)
        try:
            yield
        finally:
            _set_deterministic(prev_det)
            if prev_threads != threads:
                torch.set_num_threads(prev_threads)


def _set_deterministic(mode: bool) -> None:
    # torch.use_deterministic_algorithms also sets the flag of torch._inductor (compiled
    # code), whose import pulls in torch._dynamo: about a second in a fresh process. Eager
    # kernels read only the flag set here.
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:
        torch.use_deterministic_algorithms(mode)
    else:
        setter(mode)


def serialize_state(state: Mapping[str, torch.Tensor | npt.NDArray[Any]]) -> bytes:
    """Tensors to bytes, deterministically.

    Format (all integers little-endian): ``b"AOIW"``, ``u8`` version, ``u32``
    tensor count; then per tensor, sorted by name: ``u16`` name length, UTF-8
    name, ``u8`` dtype code (1 float32, 2 float64, 3 int64, 4 int32), ``u8``
    rank, ``u32`` per dimension, and the C-ordered little-endian data.
    """
    out = [MAGIC, struct.pack("<BI", FORMAT_VERSION, len(state))]
    for name in sorted(state):
        value = state[name]
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        array = np.asarray(array)
        code = _CODES.get(array.dtype.newbyteorder("="))
        if code is None:
            raise ValueError(f"tensor {name!r} has unsupported dtype {array.dtype}")
        raw = name.encode()
        out.append(struct.pack("<H", len(raw)) + raw)
        out.append(struct.pack(f"<BB{array.ndim}I", code, array.ndim, *array.shape))
        out.append(np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes())
    return b"".join(out)


def deserialize_state(blob: bytes) -> dict[str, npt.NDArray[Any]]:
    """Bytes made by :func:`serialize_state` back to named numpy arrays (native order).

    Raises
    ------
    MalformedUpdate
        If the blob is truncated, has trailing bytes, or is not in this format.
    """
    view = memoryview(blob)
    try:
        if bytes(view[:4]) != MAGIC:
            raise MalformedUpdate("model blob does not start with the AOIW header")
        version, count = struct.unpack_from("<BI", view, 4)
        if version != FORMAT_VERSION:
            raise MalformedUpdate(f"model blob has format version {version}, expected 1")
        pos = 9
        state: dict[str, npt.NDArray[Any]] = {}
        for _ in range(count):
            (n,) = struct.unpack_from("<H", view, pos)
            pos += 2
            name = bytes(view[pos : pos + n]).decode()
            pos += n
            code, ndim = struct.unpack_from("<BB", view, pos)
            pos += 2
            shape = struct.unpack_from(f"<{ndim}I", view, pos)
            pos += 4 * ndim
            dtype = _DTYPES.get(code)
            if dtype is None:
                raise MalformedUpdate(f"tensor {name!r} has unknown dtype code {code}")
            size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if pos + size > len(view):
                raise MalformedUpdate(f"model blob is truncated inside tensor {name!r}")
            array = np.frombuffer(view[pos : pos + size], dtype=dtype).reshape(shape)
            state[name] = array.astype(dtype.newbyteorder("="))
            pos += size
        if pos != len(view):
            raise MalformedUpdate(f"model blob has {len(view) - pos} trailing bytes")
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise MalformedUpdate(f"model blob is malformed: {exc}") from None
    return state


@functools.lru_cache(maxsize=64)
def _state_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only: no memory, no random draws
        net = build_network(spec)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def load_parameters(spec: ModelSpec, blob: bytes) -> dict[str, torch.Tensor]:
    """The weights in ``blob`` as float32 tensors by name, checked against ``spec``.

    What :func:`load_network` loads, without building (and randomly
    initialising) a network: trainers work on these tensors directly.

    Raises
    ------
    MalformedUpdate
        If the blob's tensors do not match the spec's network (names, shapes).
    """
    state = deserialize_state(blob)
    expected = _state_shapes(spec)
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != expected:
        raise MalformedUpdate(
            f"model blob does not fit the model spec: tensors {got} != expected {expected}"
        )
    return {k: torch.from_numpy(v.astype(np.float32)) for k, v in state.items()}


def load_network(spec: ModelSpec, blob: bytes) -> AnomalyNet:
    """A network for ``spec`` holding the weights in ``blob``.

    Raises
    ------
    MalformedUpdate
        If the blob's tensors do not match the spec's network (names, shapes).
    """
    params = load_parameters(spec, blob)
    net = build_network(spec)
    net.load_state_dict(params)
    return net


def init_model(spec: ModelSpec, seed: int) -> bytes:
    """The initial global model for ``spec``: serialised weights drawn with ``seed``."""
    with deterministic_torch(seed):
        net = build_network(spec)
    return serialize_state(net.state_dict())
