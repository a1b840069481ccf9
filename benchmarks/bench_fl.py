"""Time the federated-learning layer on this machine: local training, aggregation, a round.

Run: ``.venv/bin/python benchmarks/bench_fl.py [--workers 20] [--cache-s 6]`` (for
large rounds, e.g. ``--workers 1000 --repeat 2``).
Prints one table; every row is the best of a few repetitions (wall time).
Setting: the default generator (50 Hz, 8 sensors), the default ``ModelSpec``
(window 16, hidden 16) and ``TrainConfig`` (2 epochs, batch 32, SGD), each
worker's cache the last ``--cache-s`` seconds of its stream, at most
``--max-windows`` windows. Training runs on one thread per process, as in
the library. A round is timed both ways, worker by worker (``train_local``)
and in one vectorised pass (``train_batch``, the same bytes); the load
average before and after says how busy the machine was.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import timeit
from collections.abc import Callable

import torch

from aoichain.fl import (
    GeneratorConfig,
    ModelSpec,
    ModelStore,
    PrivacyPolicy,
    TrainConfig,
    aggregate,
    build_network,
    deserialize_state,
    evaluate,
    fit_normaliser,
    generate_streams,
    init_model,
    make_windows,
    serialize_state,
    train_batch,
    train_local,
    twin_view,
)
from aoichain.fl.model import deterministic_torch, features, load_parameters, normaliser
from aoichain.fl.optim import init_slots
from aoichain.fl.steps import worker_step


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls, seconds (the least disturbed run)."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--cache-s", type=float, default=6.0, help="cache length, seconds")
    parser.add_argument("--max-windows", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    k, rep = args.workers, args.repeat
    load_before = os.getloadavg()

    streams = generate_streams(GeneratorConfig(n_streams=k, duration_s=120.0, seed=0))
    center, scale = fit_normaliser([s.until(60.0) for s in streams])
    spec = ModelSpec(n_sensors=streams[0].n_sensors, center=center, scale=scale)
    cfg = TrainConfig()
    now = 100.0
    caches = [
        make_windows(s.window(now - args.cache_s, now), spec.window, max_windows=args.max_windows)
        for s in streams
    ]
    glob = init_model(spec, 0)
    n_params = sum(p.numel() for p in build_network(spec).parameters())
    windows = len(caches[0])
    steps = cfg.epochs * -(-windows // cfg.batch_size)
    rows: list[tuple[str, float]] = []

    secs = best_of(lambda: generate_streams(GeneratorConfig(n_streams=k, seed=1)), 2)
    rows.append((f"generate_streams: {k} streams x 1200 s at 50 Hz", secs))
    policy = PrivacyPolicy(sensitive_columns=("temperature",), sensitive_windows=((10.0, 20.0),))
    rows.append(
        (
            f"twin_view of one {streams[0].times[-1]:.0f} s stream",
            best_of(lambda: twin_view(streams[0], policy), rep),
        )
    )
    cache = streams[0].window(now - args.cache_s, now)
    secs = best_of(lambda: make_windows(cache, spec.window, max_windows=args.max_windows), rep)
    rows.append((f"make_windows of one {args.cache_s:g} s cache", secs))

    params = load_parameters(spec, glob)
    names, tensors = list(params), list(params.values())
    slots = init_slots(cfg.optimizer, tensors, cfg.momentum)
    x = features(torch.from_numpy(caches[0].x[: cfg.batch_size]), *normaliser(spec))
    y = torch.from_numpy(caches[0].y[: cfg.batch_size])

    def one_step() -> None:
        for step in range(1, 101):
            worker_step(
                names,
                tensors,
                slots,
                x,
                y,
                step=step,
                optimizer=cfg.optimizer,
                lr=cfg.lr,
                momentum=cfg.momentum,
            )

    with deterministic_torch(0):
        secs = best_of(one_step, rep) / 100
    rows.append((f"one local training step (batch {cfg.batch_size})", secs))
    secs = best_of(lambda: train_local(spec, glob, caches[0], cfg), rep)
    rows.append((f"train_local: one worker, {windows} windows, {steps} steps", secs))
    cfgs = [cfg.model_copy(update={"seed": i}) for i in range(k)]

    def full_round() -> None:
        for d, c in zip(caches, cfgs, strict=True):
            train_local(spec, glob, d, c)

    one_by_one = best_of(full_round, rep)
    rows.append((f"a round: {k} workers' local training, one by one", one_by_one))
    batched = best_of(lambda: train_batch(spec, glob, caches, cfgs), rep)
    rows.append((f"a round: {k} workers' local training, train_batch", batched))
    updates = train_batch(spec, glob, caches, cfgs)
    expected = [train_local(spec, glob, d, c).blob for d, c in zip(caches, cfgs, strict=True)]
    if [u.blob for u in updates] != expected:
        raise SystemExit("train_batch did not give train_local's bytes on this machine")
    blobs, weights = [u.blob for u in updates], [float(u.samples) for u in updates]
    for rule in ("fedavg", "median", "trimmed_mean"):
        secs = best_of(lambda rule=rule: aggregate(blobs, weights, rule), rep)
        rows.append((f"aggregate {k} updates, {rule}", secs))
    rows.append(
        (
            "serialize_state + deserialize_state",
            best_of(lambda: deserialize_state(serialize_state(deserialize_state(glob))), rep),
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = ModelStore(tmp)
        secs = best_of(lambda: [store.get(store.put(b)) for b in blobs], rep) / k
    rows.append(("ModelStore put + verified get, per blob", secs))
    test = make_windows(streams[0].window(now, now + 10.0), spec.window)
    rows.append(
        (f"evaluate on {len(test)} windows", best_of(lambda: evaluate(spec, glob, test), rep))
    )

    load_after = os.getloadavg()
    print(
        f"fl benchmark: {k} workers, model window={spec.window} hidden={spec.hidden} "
        f"({n_params} parameters, {len(glob)} bytes), cache {args.cache_s:g} s "
        f"(<= {args.max_windows} windows), {cfg.epochs} epochs, batch {cfg.batch_size}, "
        f"torch threads per process: 1, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{v:.2f}' for v in load_before)} before, "
        f"{' '.join(f'{v:.2f}' for v in load_after)} after"
    )
    width = max(len(r[0]) for r in rows)
    print(f"| {'operation':<{width}} | milliseconds |")
    print(f"|{'-' * (width + 2)}|-------------:|")
    for name, secs in rows:
        print(f"| {name:<{width}} | {secs * 1e3:12.3f} |")
    print(f"train_batch's round is {one_by_one / batched:.2f} times as fast, with the same bytes.")


if __name__ == "__main__":
    main()
