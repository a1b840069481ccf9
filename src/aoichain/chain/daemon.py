"""A verifier as its own process: one validator or committee member behind a JSON service.

``aoichain verifier --key FILE --deployments FILE`` reads one keystore, finds
in the public deployment which verifier that key is (a committee member or a
validator of one chain), reads the chains through its own node URLs, and
answers a relayer's requests over HTTP:

========================  =====================================================
``GET  /identity``        ``{"label", "address", "role"}``
``POST /header``          ``{"number"}`` -> the block as its own node shows it (validators)
``POST /checkpoint``      ``{"relay_chain_id", "relay_contract", "header"}`` -> ``{"signature"}``
``POST /attest``          ``{"envelope", "proof"}`` -> ``{"signature"}`` (members)
========================  =====================================================

A refusal (its own node disagrees) is status 409, an unavailable node 503,
a malformed request 400; the body is ``{"error": "..."}``. The service signs
only after the same checks the in-process parties make
(:class:`~aoichain.chain.validator.Validator`,
:class:`~aoichain.chain.committee.CommitteeMember`): it is those classes,
behind a socket. It holds no state a request can change, so anyone may ask;
see :mod:`aoichain.chain.remote` for why the channel needs no authentication.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from aoichain.chain.committee import CommitteeMember
from aoichain.chain.deployment import Deployment
from aoichain.chain.errors import ChainUnavailable
from aoichain.chain.keys import Signer, keystore_password, read_keystore
from aoichain.chain.remote import read_deployment, verifier_labels
from aoichain.chain.validator import Validator
from aoichain.chain.views import ChainView, http_view
from aoichain.chain.wire import (
    envelope_of,
    header_json,
    header_of,
    proof_of,
    signature_json,
)
from aoichain.errors import IntegrityError, InvalidInput

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class Verifier:
    """One verifier of a deployment: its key, its own views, and what it answers.

    Parameters
    ----------
    signer : Signer
        Its key.
    deployment : Deployment
        The public record (which address is which verifier).
    nodes : mapping, optional
        Its own node URL per chain key; chains not given are read through the
        deployment's ``views`` for this verifier, else the chain's ``rpc_url``.

    Raises
    ------
    InvalidInput
        If the key is neither a committee member nor a validator of the deployment.
    ChainUnavailable
        If one of its nodes does not answer or has another chain id.
    """

    def __init__(
        self, signer: Signer, deployment: Deployment, nodes: Mapping[str, str] | None = None
    ):
        label = verifier_labels(deployment).get(signer.address.lower())
        if label is None:
            raise InvalidInput(
                f"The key {signer.address} is neither a committee member nor a validator of "
                f"this deployment."
            )
        self.label = label
        self.address = signer.address
        own = {**deployment.views.get(label, {}), **(nodes or {})}

        def view(key: str) -> ChainView:
            url = own.get(key) or deployment.chains[key].rpc_url
            if url is None:
                raise ChainUnavailable(f"chain {key}: {label} has no node URL for it")
            return http_view(key, url, deployment.chains[key].chain_id)

        self.routes: dict[str, Handler]
        if label.startswith("committee-"):
            self.role = "committee"
            member = CommitteeMember(signer, {k: view(k) for k in deployment.chains}, deployment)
            self.routes = {"attest": lambda req: self._attest(member, req)}
        else:
            self.role = "validator"
            chain = label.split("-")[1]
            validator = Validator(signer, view(chain))
            self.routes = {
                "header": lambda req: header_json(validator.header(req.get("number", "latest"))),
                "checkpoint": lambda req: {
                    "signature": signature_json(
                        validator.sign_checkpoint(
                            int(req["relay_chain_id"]),
                            str(req["relay_contract"]),
                            header_of(req["header"]),
                        )
                    )
                },
            }

    @staticmethod
    def _attest(member: CommitteeMember, req: dict[str, Any]) -> dict[str, Any]:
        sig = member.attest(envelope_of(req["envelope"]), proof_of(req["proof"]))
        return {"signature": signature_json(sig)}

    def identity(self) -> dict[str, Any]:
        """What ``GET /identity`` answers (public)."""
        return {"label": self.label, "address": self.address, "role": self.role}

    def answer(self, route: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body answering ``request`` on ``route``."""
        handler = self.routes.get(route)
        if handler is None:
            return 404, {"error": f"{self.label} answers no {route!r}"}
        try:
            return 200, handler(request)
        except IntegrityError as exc:
            return 409, {"error": str(exc)}
        except ChainUnavailable as exc:
            return 503, {"error": str(exc)}
        except (InvalidInput, KeyError, TypeError, ValueError) as exc:
            return 400, {"error": f"malformed request: {type(exc).__name__}: {exc}"}


def serve(verifier: Verifier, host: str = "127.0.0.1", port: int = 0) -> HTTPServer:
    """An HTTP server answering for ``verifier`` (bound, not yet serving: call
    ``serve_forever``); one request at a time, as its views are not shared."""

    class _Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.strip("/") == "identity":
                self._reply(200, verifier.identity())
            else:
                self._reply(404, {"error": "GET /identity only"})

        def do_POST(self) -> None:
            try:
                size = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(size) or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("the body must be a JSON object")
            except ValueError as exc:
                self._reply(400, {"error": f"malformed request: {exc}"})
                return
            self._reply(*verifier.answer(self.path.strip("/"), request))

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{verifier.label}: {format % args}\n")

    return HTTPServer((host, port), _Handler)


def start_verifier(
    key_file: str | Path,
    deployments: str | Path,
    *,
    password_file: str | Path | None = None,
    nodes: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[Verifier, HTTPServer]:
    """Read the key and the deployment, reach the verifier's nodes, bind its service.

    Raises
    ------
    InvalidInput
        A bad keystore or password, or a key that is no verifier of the deployment.
    ChainUnavailable
        A bad deployments file, or a node that does not answer.
    """
    signer = read_keystore(key_file, keystore_password(password_file))
    verifier = Verifier(signer, read_deployment(deployments), nodes)
    return verifier, serve(verifier, host, port)
