"""Type stubs of agentic_jwt._native, the Rust extension module of agentic-jwt
(draft-goswami-agentic-jwt-00). Section numbers refer to the draft."""

from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Union

__version__: str

Spec = Union[Dict[str, Any], str, bytes]
Profile = Literal["jcs", "python-ref"]

# --- exceptions ---------------------------------------------------------------

class AgentJwtError(Exception):
    """Base class of every agentic_jwt error."""

class ChecksumError(AgentJwtError):
    """An agent specification that cannot be checksummed (§5.2-§5.3)."""

    kind: str
    """The stable error kind `ajwt checksum` reports (conformance/vectors/checksum.json `errorKinds`)."""
    path: Optional[str]
    """Where in the document (e.g. "tools[2].name"), None for whole-document problems."""
    message: str
    """The message without the path."""

class AgentKeyError(AgentJwtError):
    """A key that cannot be generated, read or used (RFC 9449 §4.2, §9.2.2)."""

class VerificationError(AgentJwtError):
    """A refused intent token or DPoP proof (§6.5, §9.2), with the HTTP answer to give."""

    status: int
    """401 or 403 (400 for a malformed Authorization header, 503 when keys or status lists are unavailable)."""
    error: Optional[str]
    """OAuth error code (RFC 6750 §3.1, RFC 9449 §7.1); None when no credentials were sent."""
    description: Optional[str]
    """The error description."""
    www_authenticate: Optional[str]
    """The full WWW-Authenticate challenge (RFC 6750 §3, RFC 9449 §7.1); None for a 503."""
    headers: Dict[str, str]
    """Every response header to send (WWW-Authenticate, Cache-Control: no-store, DPoP-Nonce when wanted)."""
    body: Dict[str, str]
    """The JSON response body: {"error", "error_description"}, empty without an error code."""

# --- checksums (§5.2-§5.3) and sequence hashes (§4.4.4) -------------------------

def checksum(spec: Spec, profile: Profile = "jcs") -> str:
    """`sha256:<hex>` of an agent specification, exactly as `ajwt checksum` prints it (§5.3)."""
    ...

def canonical(spec: Spec, profile: Profile = "jcs") -> bytes:
    """The exact bytes hashed by checksum() (§5.3.1 JCS or §5.3.2 reference form)."""
    ...

def normalize_prompt(text: str) -> str:
    """The prompt normalization of §5.3.2, bit-exact with CPython."""
    ...

def sequence_hash(completed_steps: Sequence[str], workflow_step: Optional[str] = None) -> str:
    """The `step_sequence_hash` claim (§4.4.4): 16 hex digits."""
    ...

def delegation_hash(chain: Sequence[str], agent_id: str) -> str:
    """The `delegation_chain` claim (§4.4.4): 16 hex digits; agent_id appended unless last (I-16)."""
    ...

# --- the issuer's request rules (§4.2.1, §4.3.3, §4.5) ----------------------------

class ProtocolError(AgentJwtError):
    """A token request or workflow step the issuer would refuse (§4.2.1, §4.3.3, §4.5)."""

    error: str
    """The OAuth error code ("invalid_request", "workflow_step_unauthorized", ...)."""
    status: int
    """The HTTP status the issuer answers (400, 403)."""
    description: str
    """The error description."""
    reason: Optional[str]
    """For a refused step: why ("missing_prerequisites", "assigned_to_other_agent", ...)."""
    missing_steps: Optional[List[str]]
    """For a refused step: the required steps not completed."""

def decode_token_request(body: Union[Mapping[str, Any], str, bytes]) -> Dict[str, Any]:
    """An agent_checksum token request decoded as `ajwt serve` decodes it (§4.2.1, §4.5.6)."""
    ...

def authorize_step(
    workflow: Union[Mapping[str, Any], str, bytes],
    agent_id: str,
    workflow_step: str,
    completed_steps: Sequence[str],
) -> None:
    """None if the issuer would authorize the step (§4.3.3, §4.5.5, §6.6.4); raises ProtocolError."""
    ...

# --- agent keys and DPoP proofs (RFC 9449, §9.2.2) --------------------------------

class AgentKey:
    """An agent's private key: public JWK, RFC 7638 thumbprint, DPoP proofs (§9.2.2)."""

    @staticmethod
    def generate(alg: Literal["ES256", "EdDSA", "Ed25519", "RS256", "PS256"] = "ES256") -> "AgentKey": ...
    @staticmethod
    def from_pem(pem: Union[str, bytes], alg: Optional[str] = None) -> "AgentKey": ...
    @staticmethod
    def from_jwk(jwk: Union[Mapping[str, Any], str, bytes], alg: Optional[str] = None) -> "AgentKey": ...
    @property
    def alg(self) -> str: ...
    def public_jwk(self) -> Dict[str, Any]: ...
    def thumbprint(self) -> str: ...
    def private_pem(self) -> str: ...
    def dpop_proof(
        self,
        method: str,
        url: str,
        access_token: Optional[str] = None,
        nonce: Optional[str] = None,
        iat: Optional[int] = None,
    ) -> str:
        """A DPoP proof JWT (RFC 9449 §4.2); `ath` when access_token is given, iat defaults to now."""
        ...
    def sign(self, typ: str, claims: Mapping[str, Any]) -> str:
        """A compact JWS over claims with header {typ, alg} (tests, tools)."""
        ...

def jwk_thumbprint(jwk: Union[Mapping[str, Any], str, bytes]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a JWK, base64url (the `cnf.jkt` value)."""
    ...

# --- verification (§6.5, §9.2) ----------------------------------------------------

class IntentClaims:
    """The verified claims of an intent token (§4.4.2), read-only."""

    @property
    def iss(self) -> str: ...
    @property
    def sub(self) -> str: ...
    @property
    def aud(self) -> List[str]: ...
    @property
    def exp(self) -> int: ...
    @property
    def iat(self) -> int: ...
    @property
    def nbf(self) -> Optional[int]: ...
    @property
    def jti(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def scopes(self) -> List[str]: ...
    @property
    def agent_id(self) -> str: ...
    @property
    def executed_by(self) -> str: ...
    @property
    def agent_checksum(self) -> str: ...
    @property
    def registration_id(self) -> str: ...
    @property
    def workflow_id(self) -> Optional[str]: ...
    @property
    def workflow_step(self) -> Optional[str]: ...
    @property
    def delegation_chain(self) -> str: ...
    @property
    def step_sequence_hash(self) -> str: ...
    @property
    def cnf_jkt(self) -> Optional[str]: ...
    @property
    def dpop_jkt(self) -> Optional[str]: ...
    @property
    def claims(self) -> Dict[str, Any]: ...

class Verifier:
    """Verifies intent tokens for one resource server exactly as ajwt-verifier does (§6.5.3)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        pop: Literal["required", "optional", "disabled"] = "required",
        jwks: Optional[Union[Mapping[str, Any], str, bytes]] = None,
        *,
        algorithms: Optional[Sequence[str]] = None,
        leeway: int = 30,
        max_age: Optional[int] = None,
        dpop_window: int = 60,
        max_token_len: int = 16384,
        known_checksums: Optional[Sequence[str]] = None,
        status_lists: Literal["fail-closed", "fail-open", "off"] = "fail-closed",
        status_list_origins: Optional[Sequence[str]] = None,
        nonces: bool = False,
        nonce_lifetime: float = 300.0,
        replay_cache_size: int = 100000,
    ) -> None:
        """Keys by RFC 8414 discovery from `issuer` at the first verify() unless `jwks` is given."""
        ...
    def verify(
        self,
        authorization: Optional[Union[str, Sequence[str]]],
        dpop: Optional[Union[str, Sequence[str]]],
        method: str,
        url: str,
        scopes: Optional[Union[str, Sequence[str]]] = None,
        workflow_step: Optional[Union[str, Sequence[str]]] = None,
        workflow_id: Optional[str] = None,
        delegation_chains: Optional[Sequence[str]] = None,
    ) -> IntentClaims:
        """§6.5.3 steps 1-8 for one request (GIL released); raises VerificationError."""
        ...
    def current_nonce(self) -> Optional[str]:
        """The DPoP-Nonce to send (RFC 9449 §8), None without nonces."""
        ...
    @property
    def issuer(self) -> str: ...
    @property
    def audience(self) -> str: ...

# --- client (PY2) begin ---

class IssuerError(AgentJwtError):
    """The issuer refused a request or could not be reached (§4.5, RFC 6749 §5.2)."""

    status: Optional[int]
    """HTTP status of the refusal; None when no response was received."""
    error: Optional[str]
    """OAuth error code (`agent_checksum_mismatch`, `workflow_step_unauthorized`, ...;
    `http_<status>` for a body without one; `network_error`, `discovery_error`,
    `protocol_error`, `configuration_error` when nothing was refused)."""
    description: Optional[str]
    """`error_description`."""
    missing_steps: List[str]
    """`missing_steps` of `workflow_step_unauthorized` (§4.5.5)."""
    retry_after: Optional[float]
    """Seconds of the last response's `Retry-After` (RFC 9110 §10.2.3), when sent."""
    existing_agent_id: Optional[str]
    """`existing_agent_id` of `duplicate_agent` (§5.4.3)."""

class IssuerClient:
    """The client of one issuer (ajwt_client::IssuerClient, §2): client token cached and
    refreshed (§4.2.3), the agent_checksum grant (§4.2.1), registration (§5.4, §6.3).
    HTTP runs in Rust with the GIL released."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        max_attempts: int = 3,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
    ) -> None: ...
    @staticmethod
    def from_env() -> "IssuerClient": ...
    @property
    def issuer(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    def discover(self) -> Dict[str, Optional[str]]: ...
    def client_token(self) -> str: ...
    def forget_client_token(self) -> None: ...
    def intent_token(
        self,
        agent_id: str,
        checksum: str,
        *,
        audience: Union[str, Sequence[str]],
        scopes: Sequence[str] = ...,
        workflow_id: Optional[str] = None,
        workflow_step: Optional[str] = None,
        completed_steps: Sequence[str] = ...,
        chain: Sequence[str] = ...,
        parent_token: Optional[str] = None,
        key: Optional[AgentKey] = None,
    ) -> Dict[str, Any]: ...
    def register_agent(
        self,
        spec: Spec,
        key: AgentKey,
        allowed_scopes: Optional[Sequence[str]] = None,
        profile: Profile = "jcs",
    ) -> Dict[str, Any]: ...
    def register_workflow(self, workflow: Union[Mapping[str, Any], str, bytes]) -> Dict[str, str]: ...

def parse_challenges(value: str) -> List[Dict[str, Any]]:
    """A WWW-Authenticate value (RFC 9110 §11.6.1) as [{"scheme", "params", "token68"}]."""
    ...

# --- client (PY2) end ---
