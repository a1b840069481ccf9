"""JSON-RPC over one kept-alive HTTP connection: the transport of every node backend.

web3's ``HTTPProvider`` goes through ``requests`` for every call: about
0.5 ms of Python per call on this machine, where a kept-alive
:mod:`http.client` connection takes about 0.14 ms (measured against a
local anvil node). A run makes a hundred calls a round, so the transport
is a visible share of its time. :class:`KeepAliveProvider` is a web3
provider like any other (web3's middleware, its formatters and its batch
requests still apply); it reconnects once if the server closed the
kept-alive connection, and a node that does not answer is an ``OSError``
the views ride out (:meth:`~aoichain.chain.views.ChainView.ride_out`). It
counts the connections it opened: a new one may reach a node that restarted
meanwhile, which a view then checks still holds the blocks it saw.
"""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any, cast
from urllib.parse import urlsplit

from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse


class KeepAliveProvider(JSONBaseProvider):
    """A web3 provider speaking JSON-RPC to ``url`` over one persistent connection.

    Parameters
    ----------
    url : str
        ``http://host:port[/path]`` or ``https://...``.
    timeout : float
        Seconds to wait for a connection or an answer.
    """

    def __init__(self, url: str, timeout: float = 10.0):
        super().__init__()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.endpoint_uri = url
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._path = parts.path or "/"
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        #: Connections opened so far (a new one after a failure may reach a restarted node).
        self.connections = 0

    def __repr__(self) -> str:
        return f"KeepAliveProvider({self.endpoint_uri})"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _post(self, body: bytes, resend: bool = True) -> bytes:
        headers = {"Content-Type": "application/json"}
        with self._lock:
            for attempt in (1, 2) if resend else (2,):
                conn = self._connection()
                if conn.sock is None:  # http.client connects (again) in request()
                    self.connections += 1
                try:
                    conn.request("POST", self._path, body, headers)
                    response = conn.getresponse()
                    raw = response.read()
                except (http.client.HTTPException, ConnectionError) as exc:
                    conn.close()
                    self._conn = None
                    # A kept-alive connection the server closed: reconnect once.
                    if attempt == 2 or isinstance(exc, ConnectionRefusedError):
                        raise
                    continue
                except OSError:
                    conn.close()
                    self._conn = None
                    raise
                if response.status != 200:
                    raise ConnectionError(
                        f"{self.endpoint_uri} answered HTTP {response.status}: {raw[:200]!r}"
                    )
                return raw
        raise AssertionError("unreachable")  # pragma: no cover

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """One JSON-RPC call."""
        return self.decode_rpc_response(self._post(self.encode_rpc_request(method, params)))

    def make_request_once(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """One JSON-RPC call that is never re-sent: a failed connection raises.

        For calls that must not reach the node twice unseen (a transaction,
        ``evm_mine``): the caller asks the node what it holds, then decides.
        """
        body = self.encode_rpc_request(method, params)
        return self.decode_rpc_response(self._post(body, resend=False))

    def make_batch_request(
        self, requests: list[tuple[RPCEndpoint, Any]], *, resend: bool = True
    ) -> list[RPCResponse] | RPCResponse:
        """Several JSON-RPC calls in one HTTP request (answers in request order);
        ``resend=False``: never re-sent (see :meth:`make_request_once`)."""
        body = self.encode_batch_rpc_request(requests)
        answers = json.loads(self._post(body, resend))
        if isinstance(answers, dict):  # the server refused the batch as a whole
            return cast(RPCResponse, answers)
        return cast(list[RPCResponse], sorted(answers, key=lambda a: int(a.get("id", 0))))

    def is_connected(self, show_traceback: bool = False) -> bool:
        """Whether the node answers ``web3_clientVersion``."""
        try:
            return "result" in self.make_request(RPCEndpoint("web3_clientVersion"), [])
        except (OSError, ValueError):
            if show_traceback:
                raise
            return False
