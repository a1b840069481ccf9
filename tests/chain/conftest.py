"""Fixtures of the chain suite: one network per backend, shared by the tests of a session.

Every test publishes its own task, so tests do not see each other's state.
The ``network`` fixture is parametrised over the backends: each test of the
suite runs on the embedded py-evm chains and on anvil nodes (marker
``anvil``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aoichain.chain import ChainConfig, Network

N_WORKERS = {"P": 4, "V": 4}
BACKENDS = ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]


@pytest.fixture(scope="session", params=BACKENDS)
def network(request: pytest.FixtureRequest) -> Iterator[Network]:
    """A 3-of-5 committee, 2-of-3 validators per chain, four workers per space."""
    with Network.start(ChainConfig(backend=request.param), workers=N_WORKERS) as net:
        yield net


@pytest.fixture(scope="session")
def embedded() -> Iterator[Network]:
    """An embedded network for the backend-independent checks (digests, payments, proofs)."""
    with Network.start(ChainConfig(backend="embedded"), workers=N_WORKERS) as net:
        yield net
