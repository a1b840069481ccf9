"""Fixtures of the federated-learning suite: small generated streams and the SKAB folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aoichain.fl import GeneratorConfig, SensorStream, generate_streams

REPO = Path(__file__).resolve().parents[2]


def skab_dir() -> Path:
    """Where SKAB's data folder is: $AOICHAIN_SKAB_DIR, else <repo>/../shared/datasets/skab."""
    return Path(os.environ.get("AOICHAIN_SKAB_DIR", REPO.parent / "shared" / "datasets" / "skab"))


@pytest.fixture(scope="session")
def skab() -> Path:
    folder = skab_dir()
    if not (folder / "valve1").is_dir():
        pytest.skip(
            f"SKAB data not found at {folder} (clone https://github.com/waico/SKAB and set "
            "AOICHAIN_SKAB_DIR to its data/ folder)"
        )
    return folder


@pytest.fixture(scope="session")
def line() -> list[SensorStream]:
    """Ten 200 s streams of the default production line."""
    return generate_streams(GeneratorConfig(n_streams=10, duration_s=200.0, seed=7))
