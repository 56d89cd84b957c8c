"""Obtaining intent tokens from an issuer, mirroring the Rust client shim ``ajwt-client``
(draft-goswami-agentic-jwt-00 §2 "Client Shim Library").

- :class:`AgentIdentity`: the *live* agent specification (a ``dict``, §5.2.1) and the
  agent's :class:`~agentic_jwt.AgentKey`. The checksum is recomputed from the live
  specification before every token request (§5.5.1 "Runtime Checksum Computation"), so
  a prompt changed at runtime (threat T4, §9.1) is refused by the issuer with
  ``agent_checksum_mismatch`` (§4.5.4) instead of being hidden by a cached value.
- :class:`WorkflowTracker`: the workflow, the completed steps and the delegation chain;
  :meth:`WorkflowTracker.delegate` gives a child agent its context with the parent's
  intent token as ``parent_token`` (§4.3.4, §6.6).
- :class:`TokenCache` / :class:`CacheKey`: intent tokens per (agent, checksum, step,
  audience, scopes, delegation context), reused until 30 s before ``exp``; keyed exactly
  as ``ajwt_client::CacheKey``.
- :class:`AgentSession`: one agent acting in a workflow against one audience; it gets
  (or reuses) the intent token of each step. :class:`agentic_jwt.httpx.IntentAuth`
  sends requests with it.

All HTTP (the issuer calls) and all crypto (checksums, proofs) run in Rust
(``agentic_jwt._native``); this module only keeps state.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from ._native import IssuerClient, IssuerError, checksum as _checksum

__all__ = [
    "REFRESH_MARGIN_SECS",
    "AgentIdentity",
    "AgentSession",
    "CacheKey",
    "IssuerClient",
    "IssuerError",
    "TokenCache",
    "WorkflowTracker",
]

#: Tokens are not reused during the last 30 seconds of their lifetime
#: (``ajwt_client::REFRESH_MARGIN_SECS``).
REFRESH_MARGIN_SECS = 30


class AgentIdentity:
    """An agent: its live specification (§5.2.1) and its key pair (§9.2.2).

    ``spec`` is kept by reference: a change made to the dict (or through
    :meth:`update_spec`) is seen by the next token request, whose checksum is recomputed
    from it (§5.5.1). ``profile`` is the canonicalization profile the agent is registered
    with (``"jcs"``, §5.3.1, or ``"python-ref"``, §5.3.2).
    """

    def __init__(self, spec: Dict[str, Any], key: Any, profile: str = "jcs") -> None:
        if not isinstance(spec, dict):
            raise TypeError("spec must be a dict (§5.2.1)")
        self._spec = spec
        self._key = key
        self._profile = profile
        self._lock = threading.Lock()

    @property
    def spec(self) -> Dict[str, Any]:
        """The live specification (the same dict object, not a copy)."""
        return self._spec

    @property
    def key(self) -> Any:
        """The agent's :class:`~agentic_jwt.AgentKey`."""
        return self._key

    @property
    def profile(self) -> str:
        """The canonicalization profile (§5.3)."""
        return self._profile

    @property
    def agent_id(self) -> str:
        """``agent_id`` of the live specification."""
        with self._lock:
            agent_id = self._spec.get("agent_id")
        if not isinstance(agent_id, str):
            raise ValueError("the specification has no string agent_id (§5.2.1)")
        return agent_id

    def update_spec(self, edit: Callable[[Dict[str, Any]], None]) -> None:
        """Modifies the live specification under the identity's lock (e.g. a prompt
        update). Unless the agent is re-registered, the issuer refuses the next token
        request (§4.5.4)."""
        with self._lock:
            edit(self._spec)

    def checksum(self) -> str:
        """The checksum of the live specification, recomputed now (§5.5.1), by the Rust
        implementation (``agentic_jwt.checksum``)."""
        with self._lock:
            return _checksum(self._spec, self._profile)

    def __repr__(self) -> str:
        return f"AgentIdentity(agent_id={self._spec.get('agent_id')!r}, profile={self._profile!r})"


class WorkflowTracker:
    """What an agent knows of the workflow it runs in (§2 "Workflow Tracker"): the
    workflow id, the steps completed so far (in order), the delegation chain of the
    agents above it, and the intent token of the agent that delegated to it (sent as
    ``parent_token``, spec/interpretation.md I-19).

    A root agent starts with ``WorkflowTracker(workflow_id)``; each child gets its
    context from :meth:`delegate` (or :meth:`AgentSession.delegate`).
    """

    __slots__ = ("_workflow_id", "_chain", "_completed", "_parent_token")

    def __init__(
        self,
        workflow_id: str,
        *,
        chain: Sequence[str] = (),
        completed_steps: Sequence[str] = (),
        parent_token: Optional[str] = None,
    ) -> None:
        self._workflow_id = workflow_id
        self._chain: List[str] = list(chain)
        self._completed: List[str] = []
        for step in completed_steps:
            self.complete(step)
        self._parent_token = parent_token

    @property
    def workflow_id(self) -> str:
        """The workflow id (§6.3)."""
        return self._workflow_id

    @property
    def chain(self) -> Tuple[str, ...]:
        """The agents above this one, the initiating agent first (§4.3.4)."""
        return tuple(self._chain)

    @property
    def completed_steps(self) -> Tuple[str, ...]:
        """Steps completed before the current one, in order (§4.4.4)."""
        return tuple(self._completed)

    @property
    def parent_token(self) -> Optional[str]:
        """The delegating agent's intent token, when delegated."""
        return self._parent_token

    def complete(self, step: str) -> None:
        """Records ``step`` as completed; a step already recorded is not added twice. An
        approval gate (§6.6.4) is recorded the same way once the approval is obtained."""
        if step not in self._completed:
            self._completed.append(step)

    def delegate(self, parent_agent: str, parent_token: str) -> "WorkflowTracker":
        """The child context (§4.3.4, §6.6): this chain plus ``parent_agent`` (the
        delegating agent, the holder of this tracker), the same completed steps, and
        ``parent_token``, which the issuer verifies against the chain and steps (§9.3.2)."""
        chain = list(self._chain)
        if not chain or chain[-1] != parent_agent:
            chain.append(parent_agent)
        return WorkflowTracker(
            self._workflow_id,
            chain=chain,
            completed_steps=self._completed,
            parent_token=parent_token,
        )

    def delegation_context(self) -> Dict[str, List[str]]:
        """The ``delegation_context`` request member (§4.2.1)."""
        return {"chain": list(self._chain), "completed_steps": list(self._completed)}

    def copy(self) -> "WorkflowTracker":
        """An independent copy."""
        return WorkflowTracker(
            self._workflow_id,
            chain=self._chain,
            completed_steps=self._completed,
            parent_token=self._parent_token,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkflowTracker):
            return NotImplemented
        return (self._workflow_id, self._chain, self._completed, self._parent_token) == (
            other._workflow_id,
            other._chain,
            other._completed,
            other._parent_token,
        )

    def __repr__(self) -> str:
        token = None if self._parent_token is None else "<redacted>"
        return (
            f"WorkflowTracker(workflow_id={self._workflow_id!r}, chain={self._chain!r}, "
            f"completed_steps={self._completed!r}, parent_token={token})"
        )


class CacheKey(NamedTuple):
    """What a cached intent token was issued for (``ajwt_client::CacheKey``). The
    checksum is part of the key: a specification changed at runtime misses the cache,
    so the next request carries the new checksum and is refused by the issuer (§5.5.1,
    T4) instead of the old token being reused. Completed steps are part of it too: they
    are bound into ``step_sequence_hash`` (§4.4.4)."""

    agent_id: str
    checksum: str
    step: Optional[Tuple[str, str]]
    audience: str
    scopes: Tuple[str, ...]
    chain: Tuple[str, ...] = ()
    completed_steps: Tuple[str, ...] = ()

    @classmethod
    def new(
        cls,
        agent_id: str,
        checksum: str,
        step: Optional[Tuple[str, str]],
        audience: str,
        scopes: Iterable[str],
        *,
        chain: Sequence[str] = (),
        completed_steps: Sequence[str] = (),
    ) -> "CacheKey":
        """A key; ``scopes`` are sorted and deduplicated (as in Rust)."""
        return cls(
            agent_id,
            checksum,
            None if step is None else (step[0], step[1]),
            audience,
            tuple(sorted(set(scopes))),
            tuple(chain),
            tuple(completed_steps),
        )


class TokenCache:
    """Intent tokens per :class:`CacheKey`, reused until :data:`REFRESH_MARGIN_SECS`
    before ``exp`` (§2 "Token Cache"). Thread-safe; may be shared between sessions:
    entries are per agent, and tokens are bound to the agent's key (``cnf``), so no
    agent ever uses another's token."""

    def __init__(self) -> None:
        self._entries: Dict[CacheKey, Tuple[str, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: CacheKey, now: Optional[int] = None) -> Optional[str]:
        """The token for ``key`` if it is still usable at ``now`` (Unix seconds)."""
        now = int(time.time()) if now is None else now
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            token, exp = entry
            if now < exp - REFRESH_MARGIN_SECS:
                return token
            del self._entries[key]
            return None

    def insert(self, key: CacheKey, token: str, exp: int) -> None:
        """Stores ``token``, which expires at ``exp`` (Unix seconds)."""
        with self._lock:
            self._entries[key] = (token, exp)

    def clear(self) -> None:
        """Forgets every token."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _jwt_exp(token: str) -> Optional[int]:
    """The ``exp`` claim of a JWT read without verification (only to schedule refreshes,
    as ``ajwt_client::cache::jwt_exp`` does)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return exp if isinstance(exp, int) and not isinstance(exp, bool) else None


class AgentSession:
    """An agent acting in a workflow against one audience (``ajwt_client::AgentSession``).

    :meth:`intent_token` obtains the intent token of a step (recomputing the checksum
    each time, §5.5.1) with the delegation context of the tracker, caches it, and
    remembers it as the token a child is delegated with (:meth:`delegate`). The token
    request carries a DPoP proof made with the agent's key (RFC 9449 §5) unless
    ``token_endpoint_proof=False``.
    """

    def __init__(
        self,
        identity: AgentIdentity,
        issuer: IssuerClient,
        tracker: Optional[WorkflowTracker] = None,
        audience: str = "",
        *,
        cache: Optional[TokenCache] = None,
        token_endpoint_proof: bool = True,
    ) -> None:
        if not audience:
            raise ValueError("audience is required (§4.2.1)")
        self._identity = identity
        self._issuer = issuer
        self._tracker = tracker.copy() if tracker is not None else None
        self._audience = audience
        self._cache = cache if cache is not None else TokenCache()
        self._proof = token_endpoint_proof
        self._lock = threading.Lock()
        self._last_token: Optional[str] = None

    @property
    def identity(self) -> AgentIdentity:
        """The agent identity."""
        return self._identity

    @property
    def issuer(self) -> IssuerClient:
        """The issuer client."""
        return self._issuer

    @property
    def audience(self) -> str:
        """The audience tokens are requested for."""
        return self._audience

    @property
    def cache(self) -> TokenCache:
        """The token cache."""
        return self._cache

    @property
    def tracker(self) -> Optional[WorkflowTracker]:
        """A copy of the workflow context (None outside a workflow)."""
        with self._lock:
            return None if self._tracker is None else self._tracker.copy()

    @property
    def last_token(self) -> Optional[str]:
        """The intent token obtained (or reused) last."""
        with self._lock:
            return self._last_token

    def register(self, allowed_scopes: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """Registers this agent with the issuer (§5.4; idempotent, see
        :meth:`IssuerClient.register_agent`). Needs ``register:intent``."""
        with self._identity._lock:
            spec = copy.deepcopy(self._identity.spec)
        return self._issuer.register_agent(
            spec,
            self._identity.key,
            None if allowed_scopes is None else list(allowed_scopes),
            self._identity.profile,
        )

    def complete_step(self, step: str) -> None:
        """Records ``step`` as completed in this session's context."""
        with self._lock:
            if self._tracker is None:
                raise ValueError("this session has no workflow")
            self._tracker.complete(step)

    def delegate(self) -> WorkflowTracker:
        """The context of a child agent (§4.3.4): this session's chain plus this agent,
        its completed steps, and the intent token it obtained last as ``parent_token``.
        Obtain the token of the step being delegated from, and record that step as
        completed, before calling this."""
        with self._lock:
            if self._tracker is None:
                raise ValueError("this session has no workflow")
            if self._last_token is None:
                raise ValueError("delegate() needs an intent token obtained first")
            return self._tracker.delegate(self._identity.agent_id, self._last_token)

    def intent_token(self, step: Optional[str] = None, scopes: Iterable[str] = ()) -> str:
        """An intent token for ``step`` of the tracked workflow (``None``: a token
        without workflow binding) with ``scopes``, from the cache or from the issuer.
        The checksum is recomputed from the live specification every time (§5.5.1) and
        is part of the cache key, so a runtime modification reaches the issuer, which
        refuses it (``IssuerError`` ``agent_checksum_mismatch``, §4.5.4)."""
        scopes = list(dict.fromkeys(scopes))
        agent_id = self._identity.agent_id
        checksum = self._identity.checksum()
        tracker = self.tracker
        if step is not None and tracker is None:
            raise ValueError("a workflow step needs a session with a WorkflowTracker")
        chain = tracker.chain if tracker is not None else ()
        completed = tracker.completed_steps if tracker is not None else ()
        key = CacheKey.new(
            agent_id,
            checksum,
            None if step is None or tracker is None else (tracker.workflow_id, step),
            self._audience,
            scopes,
            chain=chain,
            completed_steps=completed,
        )
        now = int(time.time())
        token = self._cache.get(key, now)
        if token is None:
            response = self._issuer.intent_token(
                agent_id,
                checksum,
                audience=self._audience,
                scopes=scopes,
                workflow_id=None if step is None or tracker is None else tracker.workflow_id,
                workflow_step=step,
                completed_steps=list(completed),
                chain=list(chain),
                parent_token=tracker.parent_token if tracker is not None else None,
                key=self._identity.key if self._proof else None,
            )
            token = response["access_token"]
            expires_in = response.get("expires_in")
            exp = now + expires_in if isinstance(expires_in, int) else _jwt_exp(token)
            if exp is not None:
                self._cache.insert(key, token, exp)
        with self._lock:
            self._last_token = token
        return token

    def __repr__(self) -> str:
        return (
            f"AgentSession(identity={self._identity!r}, audience={self._audience!r}, "
            f"tracker={self.tracker!r})"
        )
