import hashlib, json, re, sys
import jcs

def normalize_prompt(prompt: str) -> str:
    if not prompt:
        return ""
    normalized = prompt.strip()
    normalized = normalized.replace('\r\n', '\n')
    import re
    normalized = re.sub(r'\n\s*\n', '\n', normalized)
    lines = [line.strip() for line in normalized.split('\n')]
    normalized = '\n'.join(lines)
    lines = [line for line in lines if line]
    normalized = '\n'.join(lines)
    return normalized

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
