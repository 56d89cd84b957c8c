"""Agentic JWT (draft-goswami-agentic-jwt-00) for Python: the Rust implementation's
checksums, proofs and verifier, with FastAPI and httpx integrations on top."""

from ._native import AgentJwtError, __version__

__all__ = ["AgentJwtError", "__version__"]
