import hashlib, json, os, sys
import jcs

# The draft's §5.3.2 normalize_prompt, verbatim (the repository's single copy).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "conformance", "tools"))
from draft_reference import normalize_prompt  # noqa: E402

def floats(v):
    if isinstance(v, bool): return v
    if isinstance(v, int): return float(v)
    if isinstance(v, dict): return {k: floats(x) for k, x in v.items()}
    if isinstance(v, list): return [floats(x) for x in v]
    return v

spec = json.load(open(sys.argv[1], encoding="utf-8"))
components = floats({
    "agent_id": spec["agent_id"],
    "prompt_template": normalize_prompt(spec["prompt"]),
    "tools": sorted([{"name": t["name"], "description": t["description"], "parameters": t["parameters"]} for t in spec["tools"]], key=lambda x: x["name"]),
    "configuration": spec.get("configuration", {}),
})
canon = jcs.canonicalize(components)
print(canon.decode())
print("sha256:" + hashlib.sha256(canon).hexdigest())
