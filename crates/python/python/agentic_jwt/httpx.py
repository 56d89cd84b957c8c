"""An ``httpx.Auth`` for agents (draft-goswami-agentic-jwt-00 §2 "Client Shim Library",
§9.2.2 agent-level proof of possession, RFC 9449).

:class:`IntentAuth` obtains (or reuses) the intent token of a workflow step through an
:class:`agentic_jwt.client.AgentSession`, and sends every request with
``Authorization: DPoP <token>`` and a *fresh* DPoP proof (``htm``, ``htu``, ``ath``,
RFC 9449 §4.2) made by the agent's key in Rust. A ``401`` whose challenge (or body) says
``use_dpop_nonce`` is retried once with the ``DPoP-Nonce`` it carried (RFC 9449 §8–§9);
no other ``4xx`` is ever retried. Nonces are remembered per origin, so the next request
to the same server carries one from the start.

Works with ``httpx.Client`` and ``httpx.AsyncClient`` (the async flow asks the issuer on
a worker thread; the Rust client releases the GIL meanwhile)::

    auth = IntentAuth(session, step="step_4_apply_patch", scopes=["repo:write"])
    httpx.post("https://api.example.com/patches", json=..., auth=auth)
"""

from __future__ import annotations

import functools
import json
import threading
from typing import AsyncGenerator, Dict, Generator, Iterable, Optional

import httpx

from ._native import parse_challenges
from .client import AgentSession

__all__ = ["IntentAuth", "is_use_dpop_nonce"]


def _origin(url: httpx.URL) -> str:
    port = url.port
    return f"{url.scheme}://{url.host}" + ("" if port is None else f":{port}")


def is_use_dpop_nonce(response: httpx.Response) -> bool:
    """Whether a refusal asks for a (fresh) DPoP nonce: ``error="use_dpop_nonce"`` in a
    ``WWW-Authenticate`` challenge (RFC 9449 §9; parsed by the Rust parser) or in a JSON
    body (the token endpoint's form, RFC 9449 §8)."""
    for value in response.headers.get_list("www-authenticate"):
        try:
            challenges = parse_challenges(value)
        except ValueError:
            continue
        if any(c["params"].get("error") == "use_dpop_nonce" for c in challenges):
            return True
    if "json" in response.headers.get("content-type", ""):
        try:
            body = json.loads(response.content)
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
    return False


class IntentAuth(httpx.Auth):
    """``Authorization: DPoP <intent token>`` plus a fresh DPoP proof per request.

    ``session`` supplies the token of ``step`` with ``scopes`` (cached until 30 s before
    ``exp``; the checksum is recomputed for each token request, §5.5.1). The proof is
    signed with the session's agent key (the key the token's ``cnf.jkt`` names, §4.4.2)
    and bound to the token with ``ath``. A ``401 use_dpop_nonce`` is retried once with
    the nonce the server sent; nothing else is retried.
    """

    requires_request_body = False
    # Only a 401 is read (its JSON body may say use_dpop_nonce); other responses stream.
    requires_response_body = False

    def __init__(
        self,
        session: AgentSession,
        *,
        step: Optional[str] = None,
        scopes: Iterable[str] = (),
    ) -> None:
        self._session = session
        self._step = step
        self._scopes = tuple(scopes)
        self._nonces: Dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> AgentSession:
        """The agent session tokens come from."""
        return self._session

    def for_step(self, step: Optional[str], scopes: Iterable[str] = ()) -> "IntentAuth":
        """An auth for another step of the same session, sharing the nonces."""
        other = IntentAuth(self._session, step=step, scopes=scopes)
        other._nonces = self._nonces
        other._lock = self._lock
        return other

    def _token(self) -> str:
        return self._session.intent_token(self._step, self._scopes)

    def _sign(self, request: httpx.Request, token: str, nonce: Optional[str]) -> None:
        key = self._session.identity.key
        proof = key.dpop_proof(request.method, str(request.url), access_token=token, nonce=nonce)
        request.headers["Authorization"] = f"DPoP {token}"
        request.headers["DPoP"] = proof

    def _flow(
        self, request: httpx.Request, token: str
    ) -> Generator[httpx.Request, httpx.Response, None]:
        origin = _origin(request.url)
        with self._lock:
            nonce = self._nonces.get(origin)
        self._sign(request, token, nonce)
        response = yield request
        fresh = response.headers.get("dpop-nonce")
        if fresh:
            with self._lock:
                self._nonces[origin] = fresh
        if response.status_code == 401 and fresh and is_use_dpop_nonce(response):
            self._sign(request, token, fresh)
            response = yield request
            again = response.headers.get("dpop-nonce")
            if again:
                with self._lock:
                    self._nonces[origin] = again

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """The flow of ``httpx.Client``."""
        flow = self._flow(request, self._token())
        request = next(flow)
        while True:
            response = yield request
            if response.status_code == 401:
                response.read()
            try:
                request = flow.send(response)
            except StopIteration:
                break

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The flow of ``httpx.AsyncClient``: the token is obtained on a worker thread
        (``anyio.to_thread``), so the event loop is not blocked by the issuer call."""
        import anyio.to_thread

        token = await anyio.to_thread.run_sync(functools.partial(self._token))
        flow = self._flow(request, token)
        request = next(flow)
        while True:
            response = yield request
            if response.status_code == 401:
                await response.aread()
            try:
                request = flow.send(response)
            except StopIteration:
                break
