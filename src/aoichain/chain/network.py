"""Every party of a deployment in one process: for runs, tests and benchmarks on one machine.

:meth:`Network.start` starts (or attaches to) the chains, deploys the
contracts if needed, and creates each party through the same classes a
multi-process deployment uses: a :class:`~aoichain.chain.publisher.Publisher`,
the :class:`~aoichain.chain.worker.Worker` s of each space (worker ``i`` of a
space lives on that space's subchain ``i mod n``), each chain's
:class:`~aoichain.chain.validator.Validator` s, the
:class:`~aoichain.chain.committee.CommitteeMember` s and a
:class:`~aoichain.chain.relayer.Relayer`. Each holds only its own key and
reads through its own views (a verifier named in the config's or the
deployments file's ``views`` reads through its own URLs).

Keys: on the embedded backend every key is derived from ``key_seed``
(:func:`~aoichain.chain.keys.insecure_signer`: reproducible, insecure, for
tests and examples). On node backends every party gets a fresh random key;
with ``keys_dir`` each is written to its own keystore file (mode 0600), and
attaching to a ``deployments.json`` reads the infrastructure parties' keys
(deployer, relayer, committee, validators) from ``keys/`` beside it. The
publisher and the workers belong to a run: they are always new.

Funding (dev chains only): embedded chains fund every account in their
genesis; anvil nodes through ``anvil_setBalance``; other nodes from their
first unlocked account, if they have one.
"""

from __future__ import annotations

import atexit
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from web3.types import RPCEndpoint

from aoichain.chain.client import ChainClient, Receipt
from aoichain.chain.committee import CommitteeMember
from aoichain.chain.config import ChainConfig, space_of, subchain_keys
from aoichain.chain.deployment import (
    Deployment,
    RpcFile,
    check_deployed,
    contract_of,
    deploy,
    read_rpc_file,
    record_of,
)
from aoichain.chain.errors import ChainUnavailable
from aoichain.chain.keys import (
    Signer,
    insecure_signer,
    keystore_password,
    read_keystore,
    write_keystore,
)
from aoichain.chain.nodes import ChainNode, attach_rpc, start_anvils, start_embedded
from aoichain.chain.publisher import Publisher
from aoichain.chain.relayer import Relayer
from aoichain.chain.validator import Validator
from aoichain.chain.views import ChainView, http_view
from aoichain.chain.worker import Worker

ETHER = 10**18
#: What each account that sends transactions is funded with on the chains it acts on.
FUND_WEI = 1_000 * ETHER
WORKER_FUND_WEI = 10 * ETHER
PUBLISHER_FUND_WEI = 1_000_000 * ETHER


@dataclass
class Keys:
    """Every key of a deployment and of one run, by role."""

    deployer: Signer
    relayer: Signer
    committee: list[Signer]
    validators: dict[str, list[Signer]]
    publisher: Signer
    workers: dict[str, list[Signer]]

    @classmethod
    def insecure(cls, config: ChainConfig, workers: Mapping[str, int]) -> Keys:
        """Keys derived from ``config.key_seed``: **insecure**, for embedded chains and tests."""
        s = config.key_seed
        chains = ["M", *subchain_keys(config.subchains)]
        return cls(
            deployer=insecure_signer(s, "deployer"),
            relayer=insecure_signer(s, "relayer"),
            committee=[insecure_signer(s, "committee", i) for i in range(config.committee_size)],
            validators={
                k: [
                    insecure_signer(s, f"validator-{k}", i)
                    for i in range(config.subchain_validators)
                ]
                for k in chains
            },
            publisher=insecure_signer(s, "publisher"),
            workers={
                sp: [insecure_signer(s, f"worker-{sp}", i) for i in range(n)]
                for sp, n in workers.items()
            },
        )

    @classmethod
    def fresh(cls, config: ChainConfig, workers: Mapping[str, int]) -> Keys:
        """A fresh random key for every party."""
        chains = ["M", *subchain_keys(config.subchains)]
        return cls(
            deployer=Signer.random("deployer"),
            relayer=Signer.random("relayer"),
            committee=[Signer.random(f"committee-{i}") for i in range(config.committee_size)],
            validators={
                k: [Signer.random(f"validator-{k}-{i}") for i in range(config.subchain_validators)]
                for k in chains
            },
            publisher=Signer.random("publisher"),
            workers={
                sp: [Signer.random(f"worker-{sp}-{i}") for i in range(n)]
                for sp, n in workers.items()
            },
        )

    def infrastructure(self) -> list[Signer]:
        """The deployment's own parties: deployer, relayer, committee, validators."""
        return [
            self.deployer,
            self.relayer,
            *self.committee,
            *(v for vs in self.validators.values() for v in vs),
        ]

    def run_parties(self) -> list[Signer]:
        """A run's parties: the publisher and the workers."""
        return [self.publisher, *(w for ws in self.workers.values() for w in ws)]

    def write(self, keys_dir: Path, password: str, signers: list[Signer]) -> None:
        """One keystore file per party, ``keys_dir/<role>.json``, mode 0600."""
        for signer in signers:
            write_keystore(keys_dir / f"{signer.role}.json", signer, password)


def read_infrastructure_keys(
    keys_dir: Path, password: str, config: ChainConfig, subchains: list[str]
) -> dict[str, Any]:
    """The deployer, relayer, committee and validators' keystores written by ``chains up``."""
    chains = ["M", *subchains]
    return {
        "deployer": read_keystore(keys_dir / "deployer.json", password),
        "relayer": read_keystore(keys_dir / "relayer.json", password),
        "committee": [
            read_keystore(keys_dir / f"committee-{i}.json", password)
            for i in range(config.committee_size)
        ],
        "validators": {
            k: [
                read_keystore(keys_dir / f"validator-{k}-{i}.json", password)
                for i in range(config.subchain_validators)
            ]
            for k in chains
        },
    }


def read_run_keys(
    keys_dir: Path, password: str, workers: Mapping[str, int]
) -> tuple[Signer, dict[str, list[Signer]]]:
    """The publisher's and the workers' keystores a run wrote to ``keys_dir`` (to resume it).

    Raises
    ------
    InvalidInput
        If a keystore is missing or the password does not open it.
    """
    publisher = read_keystore(keys_dir / "publisher.json", password)
    found = {
        sp: [read_keystore(keys_dir / f"worker-{sp}-{i}.json", password) for i in range(n)]
        for sp, n in workers.items()
    }
    return publisher, found


def funding(keys: Keys, subchains: list[str], config: ChainConfig) -> dict[str, dict[str, int]]:
    """Wei each sending account needs on each chain, by chain key, then address."""
    ops = {keys.deployer.address: FUND_WEI, keys.relayer.address: FUND_WEI}
    out: dict[str, dict[str, int]] = {"M": {**ops, keys.publisher.address: PUBLISHER_FUND_WEI}}
    out["R"] = dict(ops)
    for key in subchains:
        out[key] = dict(ops)
    for space, signers in keys.workers.items():
        mine = [k for k in subchains if space_of(k) == space]
        for i, w in enumerate(signers):
            out["M"][w.address] = WORKER_FUND_WEI
            out[mine[i % len(mine)]][w.address] = WORKER_FUND_WEI
    return out


def fund(view: ChainView, targets: Mapping[str, int], log: list[Receipt]) -> None:
    """Top up each target to its amount on a dev chain (anvil's ``anvil_setBalance``, or a transfer
    from the node's first unlocked account).

    Raises
    ------
    ChainUnavailable
        If the node can do neither and an account lacks funds.
    """
    w3 = view.w3
    short = {a: wei for a, wei in targets.items() if view.balance(a) < wei // 2}
    if not short:
        return
    first = next(iter(short))
    probe = w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [first, hex(short[first])])
    if "error" not in probe:
        for address, wei in list(short.items())[1:]:
            w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [address, hex(wei)])
        # anvil edits the head block's state in place, so that block's state no longer
        # matches its root and no proof at it verifies: seal the edit in a block of its own.
        w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        return
    accounts = view._read("listing accounts", lambda: w3.eth.accounts)
    if not accounts:
        raise ChainUnavailable(
            f"{view.where}: accounts need funds and the node has no unlocked account to pay "
            f"them (run anvil, or fund them yourself)"
        )
    for address, wei in short.items():
        tx: Any = {"from": accounts[0], "to": w3.to_checksum_address(address), "value": wei}
        rcpt: Any = view._read("funding an account", partial(_transfer, w3, tx))
        log.append(
            Receipt(
                chain=view.key,
                tx_hash=rcpt["transactionHash"].to_0x_hex(),
                block=int(rcpt["blockNumber"]),
                gas_used=int(rcpt["gasUsed"]),
                label="fund",
                sender=str(accounts[0]),
            )
        )


def _transfer(w3: Any, tx: Any) -> Any:
    return w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction(tx), timeout=60, poll_latency=0.005
    )


@dataclass(frozen=True)
class _Folders:
    keys: Path | None
    logs: Path | None
    state: Path | None


def loopback_port(key: str, url: str) -> int:
    """The port of ``http://127.0.0.1:PORT``, the URL of a node ``chains up`` started.

    Raises
    ------
    ChainUnavailable
        If ``url`` is not such a URL.
    """
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/?", url)
    if not match:
        raise ChainUnavailable(
            f"chain {key}: {url!r} is not the loopback URL of a node aoichain started"
        )
    return int(match.group(1))


@dataclass
class Network:
    """The chains and every party of a deployment and a run, in this process.

    Build it with :meth:`start`; stop it with :meth:`stop` (or ``with``).
    """

    config: ChainConfig
    deployment: Deployment
    nodes: dict[str, ChainNode]
    keys: Keys
    publisher: Publisher
    relayer: Relayer
    validators: dict[str, list[Validator]]
    committee: list[CommitteeMember]
    workers: dict[str, list[Worker]]
    receipts: list[Receipt] = field(default_factory=list)
    _stopped: bool = False

    @classmethod
    def start(
        cls,
        config: ChainConfig | None = None,
        workers: Mapping[str, int] | None = None,
        *,
        keys_dir: str | Path | None = None,
        log_dir: str | Path | None = None,
        state_dir: str | Path | None = None,
        resume: RpcFile | None = None,
        for_run: bool = True,
        run_keys: bool = False,
    ) -> Network:
        """Start (or attach to) the chains, deploy if needed, create every party.

        Parameters
        ----------
        config
            The chains' configuration (default: embedded, one subchain per space).
        workers
            Workers per space, e.g. ``{"P": 10, "V": 10}``.
        keys_dir
            Node backends: write every new party's keystore here (mode 0600).
        log_dir
            Where anvil nodes write their logs (a temporary folder if None).
        state_dir
            Anvil: where each node keeps its chain (``<key>.json``; see
            :meth:`supervise`); None: the chains live in memory only.
        resume
            Anvil: the deployments file of a deployment whose nodes kept their
            state in ``state_dir``: its nodes start again from it, on its URLs,
            with the deployment's parties' keys read from ``keys_dir``.
        for_run
            Whether the network serves a run (a publisher and workers, funded,
            their keystores written); False for a deployment alone (``chains up``).
        run_keys
            ``rpc`` only: the run's publisher and workers are the ones whose
            keystores ``keys_dir`` already holds (a run resumed or recovered),
            not new parties.

        Raises
        ------
        ChainUnavailable
            Anvil missing; for ``rpc`` (and ``resume``): a bad file, a node that
            does not answer or has the wrong chain id, contracts that are not the
            file's, missing keystores, no funds. Raised before any transaction is sent.
        """
        config = (config or ChainConfig()).resolved()
        counts = {"P": 10, "V": 10} if workers is None else dict(workers)
        log: list[Receipt] = []
        nodes: dict[str, ChainNode] = {}
        where = _Folders(
            Path(keys_dir) if keys_dir is not None else None,
            Path(log_dir) if log_dir is not None else None,
            Path(state_dir) if state_dir is not None else None,
        )
        try:
            return cls._start(config, counts, where, resume, nodes, log, for_run, run_keys)
        except BaseException:
            for node in nodes.values():
                node.stop()
            raise

    @classmethod
    def _start(
        cls,
        config: ChainConfig,
        counts: dict[str, int],
        where: _Folders,
        resume: RpcFile | None,
        nodes: dict[str, ChainNode],
        log: list[Receipt],
        for_run: bool,
        run_keys: bool = False,
    ) -> Network:
        addresses: dict[str, str] | None = None
        record: Deployment | None = None
        subchains = subchain_keys(config.subchains)
        views_cfg = dict(config.views)
        spec: RpcFile | None = None
        keys_of_spec: Path | None = None
        password: str | None = None
        if config.backend == "embedded":
            keys = Keys.insecure(config, counts)
            alloc = funding(keys, subchains, config)
            for k, cid in config.chain_ids.items():
                nodes[k] = start_embedded(k, cid, alloc.get(k, {}))
                # eth-tester charges read-only calls gas: their ``from`` is a funded account.
                nodes[k].w3.eth.default_account = nodes[k].w3.to_checksum_address(
                    keys.deployer.address
                )
        elif config.backend == "anvil":
            keys = Keys.fresh(config, counts)
            chain_ids, ports = config.chain_ids, None
            if resume is not None:
                spec, keys_of_spec = resume, where.keys
                chain_ids = {k: int(c.chain_id or 0) for k, c in spec.chains.items()}
                ports = {k: loopback_port(k, c.rpc_url) for k, c in spec.chains.items()}
            nodes.update(start_anvils(chain_ids, where.logs, state_dir=where.state, ports=ports))
        else:
            assert config.rpc_file is not None
            spec = read_rpc_file(config.rpc_file)
            keys_of_spec = Path(str(config.rpc_file)).parent / "keys"
            for k, entry in spec.chains.items():
                nodes[k] = attach_rpc(k, entry.rpc_url, entry.chain_id)
            keys = Keys.fresh(config, counts)
            if run_keys:
                assert where.keys is not None
                password = keystore_password(config.password_file)
                keys.publisher, keys.workers = read_run_keys(where.keys, password, counts)
        for node in nodes.values():
            node.outage_s = config.outage_s
        if spec is not None:
            subchains = [k for k in spec.chains if k not in ("M", "R")]
            views_cfg = {**spec.views, **views_cfg}
            if spec.deployed:
                if keys_of_spec is None:
                    raise ChainUnavailable("resuming a deployment needs the folder of its keys")
                password = keystore_password(config.password_file)
                config, record = cls._deployed(
                    config, spec, nodes, keys, keys_of_spec, password, views_cfg
                )
                addresses = {k: c.contract for k, c in record.chains.items()}
        ids = [n.chain_id for n in nodes.values()]
        if len(set(ids)) != len(ids):
            raise ChainUnavailable(f"the chains must have distinct chain ids; got {ids}")
        if config.backend != "embedded":
            for k, targets in funding(keys, subchains, config).items():
                fund(nodes[k].view(), targets, log)
            new = keys.run_parties() if for_run and not run_keys else []
            new += keys.infrastructure() if addresses is None else []
            if where.keys is not None and new:
                if password is None:
                    password = keystore_password(config.password_file)
                keys.write(where.keys, password, new)
        clients = {k: ChainClient(n.view(), log) for k, n in nodes.items()}
        if addresses is None:
            validators = {k: [v.address for v in vs] for k, vs in keys.validators.items()}
            committee = [s.address for s in keys.committee]
            addresses = deploy(
                clients, keys.deployer, committee, config.threshold, validators,
                config.subchain_threshold,
            )  # fmt: skip
            record = record_of(
                config.backend,
                {k: n.chain_id for k, n in nodes.items()},
                {k: n.rpc_url for k, n in nodes.items()},
                addresses,
                committee,
                config.threshold,
                validators,
                config.subchain_threshold,
                keys.deployer.address,
                views_cfg,
            )
        assert record is not None
        return cls._assemble(config, record, nodes, keys, log)

    @staticmethod
    def _deployed(
        config: ChainConfig,
        spec: RpcFile,
        nodes: dict[str, ChainNode],
        keys: Keys,
        keys_dir: Path,
        password: str,
        views_cfg: dict[str, dict[str, str]],
    ) -> tuple[ChainConfig, Deployment]:
        """The record of the deployment ``spec`` names, checked on its chains; the
        deployment's own parties' keys (read from ``keys_dir``) put into ``keys``."""
        assert spec.committee is not None
        subchains = [k for k in spec.chains if k not in ("M", "R")]
        if len(spec.committee.members) != config.committee_size:
            config = config.model_copy(
                update={
                    "committee_size": len(spec.committee.members),
                    "threshold": spec.committee.threshold,
                }
            )
        found = read_infrastructure_keys(
            keys_dir,
            password,
            config.model_copy(update={"subchain_validators": len(spec.chains["M"].validators)}),
            subchains,
        )
        keys.deployer, keys.relayer = found["deployer"], found["relayer"]
        keys.committee, keys.validators = found["committee"], found["validators"]
        record = record_of(
            config.backend,
            {k: n.chain_id for k, n in nodes.items()},
            {k: n.rpc_url for k, n in nodes.items()},
            {k: c.contracts[contract_of(k)].address for k, c in spec.chains.items()},
            list(spec.committee.members),
            spec.committee.threshold,
            {k: c.validators for k, c in spec.chains.items()},
            int(spec.chains["M"].validator_threshold or config.subchain_threshold),
            spec.owner or keys.deployer.address,
            views_cfg,
        )
        check_deployed(
            {k: n.view() for k, n in nodes.items()}, record, record.committee, record.threshold
        )
        return config, record

    @classmethod
    def _assemble(
        cls,
        config: ChainConfig,
        record: Deployment,
        nodes: dict[str, ChainNode],
        keys: Keys,
        log: list[Receipt],
    ) -> Network:
        default = {k: n.view() for k, n in nodes.items()}

        def views_of(label: str) -> dict[str, ChainView]:
            own = record.views.get(label, {})
            return {
                k: http_view(k, own[k], default[k].chain_id, outage_s=config.outage_s)
                if k in own
                else default[k]
                for k in default
            }

        def client(view: ChainView) -> ChainClient:
            return ChainClient(view, log)

        validators = {
            k: [
                Validator(s, views_of(f"validator-{k}-{i}")[k])
                for i, s in enumerate(keys.validators[k])
            ]
            for k in keys.validators
        }
        committee = [
            CommitteeMember(s, views_of(f"committee-{i}"), record)
            for i, s in enumerate(keys.committee)
        ]
        relayer = Relayer(
            keys.relayer,
            {k: client(v) for k, v in views_of("relayer").items()},
            record,
            validators,
            committee,
        )
        publisher = Publisher(keys.publisher, client(default["M"]), record)
        workers: dict[str, list[Worker]] = {}
        for space, signers in keys.workers.items():
            mine = record.subchains_of(space)
            workers[space] = [
                Worker(
                    s,
                    mine[i % len(mine)],
                    client(default[mine[i % len(mine)]]),
                    client(default["M"]),
                    record,
                )
                for i, s in enumerate(signers)
            ]
        network = cls(
            config=config,
            deployment=record,
            nodes=nodes,
            keys=keys,
            publisher=publisher,
            relayer=relayer,
            validators=validators,
            committee=committee,
            workers=workers,
            receipts=log,
        )
        atexit.register(network.stop)
        return network

    # ------------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Stop the nodes this network started (anvil); attached nodes keep running."""
        if self._stopped:
            return
        self._stopped = True
        for node in self.nodes.values():
            node.stop()
        atexit.unregister(self.stop)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dead_nodes(self) -> list[str]:
        """Chains whose node this network started and that no longer runs."""
        return [k for k, n in self.nodes.items() if n.process is not None and not n.process.alive]

    # -------------------------------------------------------------------------- reading

    def view(self, key: str) -> ChainView:
        """A view of chain ``key`` through its default endpoint."""
        return self.nodes[key].view()

    def worker(self, space: str, index: int) -> Worker:
        """Worker ``index`` of ``space`` (``"P"`` or ``"V"``)."""
        return self.workers[space][index]

    @property
    def gas_used_total(self) -> int:
        """Gas used by every transaction so far, all chains."""
        return sum(r.gas_used for r in self.receipts)

    def gas_by(self, what: Callable[[Receipt], str]) -> dict[str, int]:
        """Gas used so far, grouped by ``what(receipt)`` (e.g. its label or chain)."""
        out: dict[str, int] = {}
        for r in self.receipts:
            out[what(r)] = out.get(what(r), 0) + r.gas_used
        return out
