r"""The reference code of draft-goswami-agentic-jwt-00, Section 5.3.2
("Reference Implementation (Python)"), copied VERBATIM: only the 7-column
artwork margin of the Internet-Draft was removed. Do not "fix" it: the
conformance vectors, the CPython oracle tests (crates/checksum/tests) and the
benchmark baseline all use exactly this behaviour (e.g. the r'\n\s*\n'
collapse and the str.strip() definition of whitespace).

This is the one copy in the repository: conformance/tools/gen_checksum_vectors.py,
crates/checksum/benches/cpython_baseline.py and crates/cli/tests/data/jcs_reference.py
import it, and the Rust oracle tests embed it with include_str!.
"""
import hashlib
import json

def normalize_prompt(prompt: str) -> str:
    """
    Normalize prompt string for consistent checksum computation.
    Apply this in BOTH client and server-side computation.
    """
    if not prompt:
        return ""

    # 1. Strip leading/trailing whitespace
    normalized = prompt.strip()

    # 2. Normalize line endings (Windows \r\n vs Unix \n)
    normalized = normalized.replace('\r\n', '\n')

    # 3. Collapse multiple consecutive newlines into single newline
    import re
    normalized = re.sub(r'\n\s*\n', '\n', normalized)

    # 4. Strip whitespace from each line
    lines = [line.strip() for line in normalized.split('\n')]
    normalized = '\n'.join(lines)

    # 5. Remove empty lines
    lines = [line for line in lines if line]
    normalized = '\n'.join(lines)

    return normalized

def compute_agent_checksum(agent_components) -> str:
    """
    Compute deterministic SHA-256 checksum for agent configuration.

    Args:
        agent_components: Object with fields:
            - agent_id: str
            - prompt_template: str
            - tools: list of Tool objects
            - configuration: dict

    Returns:
        64-character lowercase hex string (SHA-256 hash)
    """
    # Construct canonical components object
    components = {
        "id": agent_components.agent_id,
        "prompt": normalize_prompt(agent_components.prompt_template),
        "tools": sorted([
            {
                "name": tool.name,
                "signature": tool.signature,
                "description": tool.description
                # "source_code" included only for deep checksum tools
            }
            for tool in agent_components.tools
        ], key=lambda x: x["name"]),  # Sort tools by name
        "config": agent_components.configuration
    }

    # Serialize with sorted keys for determinism
    content = json.dumps(components, sort_keys=True)

    # Compute SHA-256 hash
    return hashlib.sha256(content.encode('utf-8')).hexdigest()
