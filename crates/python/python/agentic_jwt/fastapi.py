"""Protecting FastAPI / Starlette routes with intent tokens (draft-goswami-agentic-jwt-00
§6.5.3 resource-server validation, §9.2.2 agent-level proof of possession).

:func:`require_intent` returns a FastAPI dependency that verifies the request's intent
token and DPoP proof with :class:`agentic_jwt.Verifier` (the Rust ``ajwt-verifier``:
signature, claims, audience, ``cnf``/proof binding, replay cache, status list, scopes,
workflow step) and hands the handler the :class:`agentic_jwt.IntentClaims`::

    from fastapi import Depends, FastAPI
    from agentic_jwt import Verifier, IntentClaims
    from agentic_jwt.fastapi import install, require_intent

    verifier = Verifier(issuer="https://idp.example", audience="https://api.example.com")
    app = FastAPI()
    install(app)  # refusals answered with the RFC 6750 JSON body

    @app.post("/patches")
    def apply_patch(claims: IntentClaims = Depends(require_intent(
            verifier, scopes=["repo:write"], workflow_step="step_4_apply_patch",
            public_base_url="https://api.example.com"))):
        return {"applied_by": claims.sub}

A refusal is answered 401 or 403 with the exact ``WWW-Authenticate`` challenge the
verifier gives (RFC 6750 §3, RFC 9449 §7.1) and, when the verifier uses nonces,
``DPoP-Nonce`` (RFC 9449 §8-§9).

The URL the proof's ``htu`` is compared with (RFC 9449 §4.3 step 9) is
``public_base_url`` + the path as the client sent it (``raw_path``, no query). Configure
``public_base_url`` in production: without it the scheme and ``Host`` of the request are
used, which a client chooses. ``X-Forwarded-Proto``/``X-Forwarded-Host`` are ignored
unless ``trust_forwarded_headers=True`` (only behind a proxy that sets them). Note that
uvicorn itself rewrites the scheme from ``X-Forwarded-Proto`` for peers in
``--forwarded-allow-ips`` (default 127.0.0.1).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Union

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._native import IntentClaims, Verifier, VerificationError

__all__ = [
    "IntentRefused",
    "install",
    "intent_refused_handler",
    "request_url",
    "require_intent",
    "verify_request",
]


class IntentRefused(HTTPException):
    """The HTTP answer to a refused intent token: ``status_code`` 401/403, ``headers``
    with ``WWW-Authenticate`` (and ``DPoP-Nonce``), ``detail`` the RFC 6750 §3.1 body
    members ``{"error", "error_description"}`` (empty without credentials, RFC 6750 §3.1).
    ``error`` is the :class:`agentic_jwt.VerificationError`."""

    def __init__(self, error: VerificationError) -> None:
        body: Dict[str, str] = dict(error.body)
        super().__init__(status_code=error.status, detail=body, headers=dict(error.headers))
        self.error = error


def intent_refused_handler(request: Request, exc: Exception) -> Response:
    """Renders :class:`IntentRefused` as the verifier's own answer: the JSON body
    ``{"error", "error_description"}`` (not FastAPI's ``{"detail": ...}``) with its
    headers, as ``ajwt_verifier::error_response`` does."""
    if not isinstance(exc, IntentRefused):  # pragma: no cover - registered for IntentRefused
        raise exc
    return JSONResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def install(app: Any) -> None:
    """Registers :func:`intent_refused_handler` for :class:`IntentRefused` on a FastAPI or
    Starlette app. Optional: without it refusals keep their status and headers, with
    FastAPI's ``{"detail": {...}}`` body."""
    app.add_exception_handler(IntentRefused, intent_refused_handler)


def _first(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    first = value.split(",")[0].strip()
    return first or None


def request_url(
    request: Request,
    public_base_url: Optional[str] = None,
    *,
    trust_forwarded_headers: bool = False,
) -> str:
    """The URL the DPoP proof must name (RFC 9449 §4.3 step 9, ``htu`` without query and
    fragment): ``public_base_url`` + the request path as sent (``raw_path``; under a
    ``Mount`` the full path, as ``ajwt_verifier::IntentLayer`` uses ``OriginalUri``).
    Without ``public_base_url``: the request's scheme and ``Host`` (or, with
    ``trust_forwarded_headers``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host``)."""
    scope = request.scope
    raw = scope.get("raw_path")
    if isinstance(raw, (bytes, bytearray)) and raw:
        path = bytes(raw).decode("latin-1").split("?", 1)[0]
    else:
        path = request.url.path
    if public_base_url is not None:
        return public_base_url.rstrip("/") + path
    scheme = request.url.scheme
    netloc = request.url.netloc
    if trust_forwarded_headers:
        scheme = _first(request.headers.get("x-forwarded-proto")) or scheme
        netloc = _first(request.headers.get("x-forwarded-host")) or netloc
    return f"{scheme}://{netloc}{path}"


def verify_request(
    verifier: Verifier,
    request: Request,
    *,
    scopes: Optional[Sequence[str]] = None,
    workflow_step: Optional[Union[str, Sequence[str]]] = None,
    workflow_id: Optional[str] = None,
    public_base_url: Optional[str] = None,
    trust_forwarded_headers: bool = False,
) -> IntentClaims:
    """Verifies a Starlette request (§6.5.3): every ``Authorization`` and ``DPoP`` header
    value (several are refused by the verifier, RFC 9449 §4.3 step 1), the method and
    :func:`request_url`. Raises :class:`agentic_jwt.VerificationError`. Blocking (the
    first call may fetch the issuer's metadata and JWKS): call it from a worker thread
    in async code."""
    headers = request.headers
    authorization = headers.getlist("authorization") or None
    dpop = headers.getlist("dpop") or None
    url = request_url(request, public_base_url, trust_forwarded_headers=trust_forwarded_headers)
    return verifier.verify(
        authorization,
        dpop,
        request.method,
        url,
        scopes=list(scopes) if scopes else None,
        workflow_step=workflow_step,
        workflow_id=workflow_id,
    )


def require_intent(
    verifier: Verifier,
    scopes: Sequence[str] = (),
    workflow_step: Optional[Union[str, Sequence[str]]] = None,
    *,
    workflow_id: Optional[str] = None,
    public_base_url: Optional[str] = None,
    trust_forwarded_headers: bool = False,
) -> Callable[[Request, Response], IntentClaims]:
    """A FastAPI dependency giving the route's handler the verified
    :class:`agentic_jwt.IntentClaims` of the request.

    ``scopes`` must all be granted (§6.5.3 step 6); ``workflow_step`` (one step or a list
    of allowed steps, optionally of ``workflow_id``) is the step the token must be bound
    to (§6.5.3 step 7). A refusal raises :class:`IntentRefused` (401/403 with the
    verifier's ``WWW-Authenticate`` and ``DPoP-Nonce``). On success the verifier's current
    nonce, when it uses nonces, is sent as ``DPoP-Nonce`` (RFC 9449 §8).

    The dependency is a plain function: FastAPI runs it on its thread pool, so the
    event loop is never blocked by verification (which releases the GIL)."""
    required = list(scopes)

    def intent_claims(request: Request, response: Response) -> IntentClaims:
        try:
            claims = verify_request(
                verifier,
                request,
                scopes=required,
                workflow_step=workflow_step,
                workflow_id=workflow_id,
                public_base_url=public_base_url,
                trust_forwarded_headers=trust_forwarded_headers,
            )
        except VerificationError as e:
            raise IntentRefused(e) from None
        nonce = verifier.current_nonce()
        if nonce:
            response.headers["DPoP-Nonce"] = nonce
        return claims

    return intent_claims
