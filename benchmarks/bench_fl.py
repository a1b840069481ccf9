"""Time the federated-learning layer on this machine: local training, aggregation, a round.

Run: ``.venv/bin/python benchmarks/bench_fl.py [--workers 20] [--cache-s 6]``.
Prints one table; every row is the best of a few repetitions (wall time).
Setting: the default generator (50 Hz, 8 sensors), the default ``ModelSpec``
(window 16, hidden 16) and ``TrainConfig`` (2 epochs, batch 32, SGD), each
worker's cache the last ``--cache-s`` seconds of its stream, at most
``--max-windows`` windows. Training runs on one thread per process, as in
the library.
"""

from __future__ import annotations

import argparse
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
    load_network,
    make_windows,
    serialize_state,
    train_local,
    twin_view,
)
from aoichain.fl.model import deterministic_torch


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

    net = load_network(spec, glob)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    x = torch.from_numpy(caches[0].x[: cfg.batch_size])
    y = torch.from_numpy(caches[0].y[: cfg.batch_size])
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def one_step() -> None:
        for _ in range(100):
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x), y).backward()
            opt.step()

    with deterministic_torch(0):
        secs = best_of(one_step, rep) / 100
    rows.append((f"one local training step (batch {cfg.batch_size})", secs))
    secs = best_of(lambda: train_local(spec, glob, caches[0], cfg), rep)
    rows.append((f"train_local: one worker, {windows} windows, {steps} steps", secs))

    def full_round() -> None:
        for i, d in enumerate(caches):
            train_local(spec, glob, d, cfg.model_copy(update={"seed": i}))

    rows.append((f"a round: {k} workers' local training, one process", best_of(full_round, rep)))
    updates = [
        train_local(spec, glob, d, cfg.model_copy(update={"seed": i})) for i, d in enumerate(caches)
    ]
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

    print(
        f"fl benchmark: {k} workers, model window={spec.window} hidden={spec.hidden} "
        f"({n_params} parameters, {len(glob)} bytes), cache {args.cache_s:g} s "
        f"(<= {args.max_windows} windows), {cfg.epochs} epochs, batch {cfg.batch_size}, "
        f"torch threads per process: 1"
    )
    width = max(len(r[0]) for r in rows)
    print(f"| {'operation':<{width}} | milliseconds |")
    print(f"|{'-' * (width + 2)}|-------------:|")
    for name, secs in rows:
        print(f"| {name:<{width}} | {secs * 1e3:12.3f} |")


if __name__ == "__main__":
    main()
