"""Agentic JWT (draft-goswami-agentic-jwt-00) for Python: the Rust implementation's
checksums (§5.2-§5.3), sequence hashes (§4.4.4), agent keys and DPoP proofs
(§9.2.2, RFC 9449), intent-token verification (§6.5) and issuer client, with
FastAPI and httpx integrations on top (``agentic_jwt.fastapi``,
``agentic_jwt.httpx``, ``agentic_jwt.client``).

Every public name of the native module ``agentic_jwt._native`` is re-exported
here, so ``from agentic_jwt import checksum, Verifier`` works."""

from . import _native
from ._native import *  # noqa: F401,F403  (the public names of the native module)
from ._native import __version__

__all__ = sorted(name for name in dir(_native) if not name.startswith("_"))
