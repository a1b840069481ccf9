"""A deployment kept in one folder: what ``aoichain chains up`` starts, and brings back.

``OUT/deployments.json`` (public record), ``OUT/keys/`` (the deployment's
parties' keystores), ``OUT/state/<key>.json`` (each chain's state, saved by
its anvil node's supervisor) and ``OUT/logs/``. :func:`up` starts and
deploys a fresh deployment in an empty folder, and brings an earlier one
back from a folder that holds all of it: the same chain ids, URLs,
contracts, keys and every chain's state. A folder holding part of a
deployment, or a deployment of other nodes, is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from aoichain.chain.config import ChainConfig
from aoichain.chain.deployment import RpcFile, read_rpc_file
from aoichain.chain.errors import ChainUnavailable
from aoichain.chain.network import Network, loopback_port
from aoichain.errors import InvalidInput

DEPLOYMENTS = "deployments.json"
KEYS = "keys"
STATE = "state"
LOGS = "logs"


def key_files(spec: RpcFile) -> list[str]:
    """The keystores a deployment's parties keep in ``keys/``."""
    assert spec.committee is not None
    validators = [
        f"validator-{k}-{i}.json"
        for k, c in spec.chains.items()
        if k != "R"
        for i in range(len(c.validators))
    ]
    committee = [f"committee-{i}.json" for i in range(len(spec.committee.members))]
    return ["deployer.json", "relayer.json", *committee, *validators]


def held(out: Path) -> RpcFile | None:
    """The deployment ``out`` holds: None if none (a fresh start), else its deployments file.

    Raises
    ------
    InvalidInput
        If ``out`` holds part of a deployment (keys or state without a
        deployments file, a missing keystore or state file) or one that
        ``chains up`` did not start (another backend, non-loopback URLs).
    """
    file, keys, state = out / DEPLOYMENTS, out / KEYS, out / STATE
    present = [
        p.name for p in (file, keys, state) if p.is_file() or (p.is_dir() and any(p.iterdir()))
    ]
    if not present:
        return None
    again = f"give another --out, or empty {out} to start afresh"
    if not file.is_file():
        raise InvalidInput(
            f"{out} holds {' and '.join(present)} but no {DEPLOYMENTS}: an incomplete deployment "
            f"(stopped before it was deployed?); {again}"
        )
    try:
        spec = read_rpc_file(file)
        backend = json.loads(file.read_text()).get("backend")
    except (ChainUnavailable, ValueError) as exc:
        raise InvalidInput(f"{file} is not a deployments file: {exc}") from None
    if backend != "anvil" or not spec.deployed:
        what = f"a deployment on {backend!r} nodes" if spec.deployed else "no contracts"
        raise InvalidInput(
            f"{file} records {what}, not anvil nodes `aoichain chains up` started; {again}"
        )
    for key, chain in spec.chains.items():
        loopback_port(key, chain.rpc_url)
    missing = [f"{KEYS}/{name}" for name in key_files(spec) if not (keys / name).is_file()]
    missing += [f"{STATE}/{k}.json" for k in spec.chains if not (state / f"{k}.json").is_file()]
    if missing:
        shown = ", ".join(missing[:4]) + (
            f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        )
        raise InvalidInput(f"{out} holds an incomplete deployment: {shown} missing; {again}")
    return spec


def _conflicts(config: ChainConfig, spec: RpcFile) -> list[str]:
    """Options given explicitly that differ from the deployment ``spec`` records."""
    assert spec.committee is not None
    recorded = {
        "committee_size": len(spec.committee.members),
        "threshold": spec.committee.threshold,
        "subchain_validators": len(spec.chains["M"].validators),
        "subchain_threshold": spec.chains["M"].validator_threshold,
        "subchains": spec.subchain_counts(),
    }
    return [
        f"{name} {getattr(config, name)} (it has {value})"
        for name, value in recorded.items()
        if name in config.model_fields_set and getattr(config, name) != value
    ]


def up(config: ChainConfig, out: str | Path) -> tuple[Network, bool]:
    """Start the deployment kept in ``out`` on local anvil nodes; whether it was brought back.

    An empty (or missing) ``out``: the nodes start empty, the contracts are
    deployed with fresh keys (``out/keys``), every chain's state is saved
    (``out/state``) and ``out/deployments.json`` written, last. A folder holding
    a complete earlier deployment: its nodes start again from their state
    files on their recorded URLs, the deployment's parties read their keys
    from ``out/keys``, and the contracts are checked to be the record's; the
    options of ``config`` given explicitly must match the deployment's.

    Keep the nodes running with :class:`~aoichain.chain.nodes.Supervisor`;
    ``Network.stop`` saves every chain's state as it stops its node.

    Raises
    ------
    InvalidInput
        If ``out`` holds part of a deployment or another kind of deployment,
        or an option differs from the deployment's (see :func:`held`).
    ChainUnavailable
        If a node does not start (its port taken, say) or its chain is not
        the one recorded.
    """
    out = Path(out)
    spec = held(out)
    config = config.model_copy(update={"backend": "anvil", "rpc_file": None})
    if spec is not None:
        conflicts = _conflicts(config, spec)
        if conflicts:
            raise InvalidInput(
                f"{out} holds a deployment with other parameters: {'; '.join(conflicts)}; "
                f"leave these options out to bring it back, or give another --out"
            )
    network = Network.start(
        config,
        workers={},
        resume=spec,
        for_run=False,
        keys_dir=out / KEYS,
        log_dir=out / LOGS,
        state_dir=out / STATE,
    )
    try:
        for node in network.nodes.values():
            if node.process is not None:
                node.process.save_state(force=True)
        if spec is None:
            network.deployment.write(out / DEPLOYMENTS)
    except BaseException:
        network.stop()
        raise
    return network, spec is not None
