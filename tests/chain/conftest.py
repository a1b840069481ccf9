"""Fixtures of the ledger suite: one ledger per backend, shared by the tests of a session.

Every test publishes its own task, so tests do not see each other's state.
The ``ledger`` fixture is parametrised over the backends: each test of the
suite runs on the embedded py-evm chains and on anvil nodes (marker
``anvil``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aoichain.chain import Ledger, LedgerConfig

N_WORKERS = {"P": 4, "V": 4}
BACKENDS = ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]


@pytest.fixture(scope="session", params=BACKENDS)
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """A 3-of-5 committee, 2-of-3 validators, four workers per subchain."""
    with Ledger.start(LedgerConfig(backend=request.param), n_workers=N_WORKERS) as led:
        yield led


@pytest.fixture(scope="session")
def embedded() -> Iterator[Ledger]:
    """An embedded ledger for the backend-independent checks (digests, payments, proofs)."""
    with Ledger.start(LedgerConfig(), n_workers=N_WORKERS) as led:
        yield led
