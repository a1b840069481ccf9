"""Parties in other processes: a deployment read from its file, and verifiers behind HTTP.

When the parties run as separate processes (``aoichain verifier``, Flower
SuperNodes), each one reads the public ``deployments.json`` itself
(:func:`read_deployment`) and talks to its own nodes. A relayer asks the
validators and committee members it needs through :class:`RemoteValidator`
and :class:`RemoteMember`: the same :class:`~aoichain.chain.relayer.Checkpointer`
and :class:`~aoichain.chain.committee.Attester` protocols the in-process
parties implement, over a small JSON service each verifier runs
(:mod:`aoichain.chain.daemon`).

The channel needs no authentication of its own: a signature authenticates
itself. Each proxy knows, from the deployment (and so from the chain), the
address its verifier must sign with, recovers the signer of every signature
it receives and refuses one from anyone else. Whoever sits on the channel can
delay or drop answers (as a relayer can), never forge one; the contracts
check the same signatures again.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoichain.chain import digests
from aoichain.chain.config import ChainConfig
from aoichain.chain.deployment import Deployment, contract_of, read_rpc_file, record_of
from aoichain.chain.errors import ChainUnavailable
from aoichain.chain.keys import Signature, recover
from aoichain.chain.messages import Envelope
from aoichain.chain.proofs import StorageProof
from aoichain.chain.views import BlockHeader
from aoichain.chain.wire import (
    envelope_json,
    header_json,
    header_of,
    proof_json,
    signature_of,
)
from aoichain.errors import IntegrityError, InvalidInput

#: Seconds a relayer waits for a verifier's answer (a verifier reads its nodes first).
VERIFIER_TIMEOUT_S = 30.0
VERIFIERS_FORMAT = "aoichain-verifiers/1"


def read_deployment(path: str | Path) -> Deployment:
    """The public record of a deployment from its ``deployments.json``.

    Raises
    ------
    ChainUnavailable
        If the file is missing or malformed, or names no deployed contracts.
    """
    spec = read_rpc_file(path)
    if not spec.deployed or spec.committee is None:
        raise ChainUnavailable(f"{path} names no deployed contracts (write it with chains up)")
    chains = spec.chains
    return record_of(
        "rpc",
        {k: int(c.chain_id or 0) for k, c in chains.items()},
        {k: c.rpc_url for k, c in chains.items()},
        {k: c.contracts[contract_of(k)].address for k, c in chains.items()},
        list(spec.committee.members),
        spec.committee.threshold,
        {k: c.validators for k, c in chains.items()},
        int(chains["M"].validator_threshold or ChainConfig().subchain_threshold),
        spec.owner or "",
        spec.views,
    )


def verifier_labels(deployment: Deployment) -> dict[str, str]:
    """Every verifier of a deployment: its label (``committee-2``, ``validator-P-0``) by
    address (lower case), as ``deployments.json``'s ``views`` and the keystores name them."""
    labels = {a.lower(): f"committee-{i}" for i, a in enumerate(deployment.committee)}
    for key, chain in deployment.chains.items():
        for i, address in enumerate(chain.validators):
            labels[address.lower()] = f"validator-{key}-{i}"
    return labels


# ------------------------------------------------------------------ the verifiers file


def write_verifiers(path: str | Path, entries: Mapping[str, tuple[str, str]]) -> Path:
    """Write where each verifier listens: ``{label: (address, url)}`` (public data only)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": VERIFIERS_FORMAT,
        "verifiers": {k: {"address": a, "url": u} for k, (a, u) in sorted(entries.items())},
    }
    target.write_text(json.dumps(data, indent=1) + "\n")
    return target


def read_verifiers(path: str | Path) -> dict[str, str]:
    """Each verifier's URL by address (lower case), from a verifiers file.

    Raises
    ------
    InvalidInput
        If the file is missing or not a verifiers file.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text())
        entries = data["verifiers"]
        return {str(v["address"]).lower(): str(v["url"]) for v in entries.values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"Verifiers file {str(file)!r} is not usable: {exc}") from None


# ------------------------------------------------------------------------- the proxies


@dataclass
class _Service:
    """One verifier's JSON service, as a relayer reaches it."""

    url: str | None
    address: str
    label: str

    def ask(self, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``route``; the answer, or the verifier's refusal raised.

        Raises
        ------
        IntegrityError
            The verifier refused (its own nodes disagree with the claim).
        ChainUnavailable
            It does not answer, or says its nodes do not.
        """
        if self.url is None:
            raise ChainUnavailable(f"{self.label} ({self.address}): no address to reach it at")
        request = urllib.request.Request(
            f"{self.url.rstrip('/')}/{route}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=VERIFIER_TIMEOUT_S) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as exc:
            try:
                message = str(json.loads(exc.read()).get("error", exc.reason))
            except ValueError:
                message = str(exc.reason)
            if exc.code == 409:
                raise IntegrityError(message) from None
            raise ChainUnavailable(f"{self.label} at {self.url}: {message}") from None
        except (OSError, ValueError) as exc:
            raise ChainUnavailable(
                f"{self.label} at {self.url} does not answer: {type(exc).__name__}: {exc}"
            ) from None

    def signed(self, answer: dict[str, Any], digest: bytes) -> Signature:
        """The answer's signature, if ``self.address`` made it over ``digest``.

        Raises
        ------
        IntegrityError
            If the answer holds no signature, or one by someone else.
        """
        try:
            sig = signature_of(answer["signature"])
            signer = recover(digest, sig)
        except (KeyError, TypeError, ValueError, InvalidInput) as exc:
            raise IntegrityError(f"{self.label} answered no valid signature: {exc}") from None
        if signer.lower() != self.address.lower():
            raise IntegrityError(
                f"{self.label} at {self.url} signed as {signer}, not as {self.address}: refused"
            )
        return sig


class RemoteValidator:
    """A validator of chain ``key`` in another process (a :class:`Checkpointer`).

    Parameters
    ----------
    url : str or None
        Its service (None: not reachable; every request is refused as unavailable).
    address : str
        The address the deployment registered for it on R: the only signer accepted.
    chain_id : int
        The id of the chain it validates.
    label : str
        ``validator-P-0``... (for messages).
    """

    def __init__(self, url: str | None, address: str, chain_id: int, label: str):
        self._service = _Service(url, address, label)
        self.chain_id = chain_id

    def __repr__(self) -> str:
        return f"RemoteValidator({self._service.label} {self._service.url})"

    @property
    def address(self) -> str:
        """The validator's registered address."""
        return self._service.address

    def header(self, number: int | str = "latest") -> BlockHeader:
        """What the validator's own node shows for a block."""
        return header_of(self._service.ask("header", {"number": number}))

    def sign_checkpoint(
        self, relay_chain_id: int, relay_contract: str, header: BlockHeader
    ) -> Signature:
        """The validator's checkpoint signature of ``header``, checked to be its own."""
        answer = self._service.ask(
            "checkpoint",
            {
                "relay_chain_id": relay_chain_id,
                "relay_contract": relay_contract,
                "header": header_json(header),
            },
        )
        digest = digests.checkpoint_digest(
            relay_chain_id,
            relay_contract,
            self.chain_id,
            header.number,
            header.block_hash,
            header.state_root,
        )
        return self._service.signed(answer, digest)


class RemoteMember:
    """A relay committee member in another process (an :class:`Attester`).

    Parameters
    ----------
    url : str or None
        Its service (None: not reachable).
    address : str
        Its address in the deployment's committee: the only signer accepted.
    label : str
        ``committee-0``... (for messages).
    """

    def __init__(self, url: str | None, address: str, label: str):
        self._service = _Service(url, address, label)

    def __repr__(self) -> str:
        return f"RemoteMember({self._service.label} {self._service.url})"

    @property
    def address(self) -> str:
        """The member's address."""
        return self._service.address

    def attest(self, envelope: Envelope, proof: StorageProof) -> Signature:
        """The member's signature of ``envelope``, checked to be its own."""
        answer = self._service.ask(
            "attest", {"envelope": envelope_json(envelope), "proof": proof_json(proof)}
        )
        return self._service.signed(answer, envelope.digest())


def remote_verifiers(
    deployment: Deployment, urls: Mapping[str, str]
) -> tuple[dict[str, list[RemoteValidator]], list[RemoteMember]]:
    """Proxies for every validator (by chain key) and committee member of a deployment.

    ``urls`` maps addresses (any case) to service URLs (:func:`read_verifiers`);
    a verifier without one is unreachable: it counts as a refusal, and the
    others may still reach the threshold.
    """
    where = {a.lower(): u for a, u in urls.items()}
    validators = {
        key: [
            RemoteValidator(where.get(a.lower()), a, chain.chain_id, f"validator-{key}-{i}")
            for i, a in enumerate(chain.validators)
        ]
        for key, chain in deployment.chains.items()
        if chain.validators
    }
    committee = [
        RemoteMember(where.get(a.lower()), a, f"committee-{i}")
        for i, a in enumerate(deployment.committee)
    ]
    return validators, committee
