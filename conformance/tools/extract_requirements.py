#!/usr/bin/env python3
"""Extract the normative statements (BCP 14 keywords) of draft-goswami-agentic-jwt-00.

Writes spec/requirements.json and spec/requirements.md (see issue 7, "Requirement
traceability").  CPython 3.11 standard library only.

Usage (from anywhere):
    python3 conformance/tools/extract_requirements.py [DRAFT.txt] [--check]

DRAFT.txt defaults to ../shared/spec/draft-goswami-agentic-jwt-00.txt relative to the
repository root, then /work/shared/spec/draft-goswami-agentic-jwt-00.txt.

Extraction rules (documented here because spec/requirements.json depends on them):

* Page footers ("Goswami ... [Page N]"), page headers ("Internet-Draft ... December 2025")
  and form feeds are removed.  A paragraph split by a page break is re-joined when the line
  before the break does not end a sentence and the line after continues at the same indent.
* Wrapped lines are joined; a line ending in "<letter>-" is joined without a space
  ("re-" + "register" -> "re-register", "UTF-" + "8" -> "UTF-8").
* Blocks indented deeper than the text they belong to (figures, code, JSON examples) and
  tables/diagrams are skipped.
* Sentences are split at the RFC style two-space sentence separator.  Every sentence containing
  a BCP 14 keyword in capitals is a requirement, except in Section 1.2 (the keyword boilerplate).
* Definition items ("agent_id:  REQUIRED.  Unique identifier ...") keep the term and keyword
  together with the next sentence; a later keyword sentence of the same item that starts with
  the keyword ("SHOULD be iat + 300 seconds ...") is prefixed with the term for context.
* A keyword sentence ending in ":" that introduces a list ("Implementations MUST:") yields one
  requirement per list item, the text being "<intro> <item>" (nested sub-items appended).
  When the intro gives reasons or examples instead of obligations (ends in "because:",
  "to prevent:", "including:", "such as:") it stays one requirement with the items appended.
* level is the strongest keyword (MUST/MUST NOT/REQUIRED/SHALL/SHALL NOT > SHOULD/SHOULD NOT/
  RECOMMENDED/NOT RECOMMENDED > MAY/OPTIONAL), as written; within a tier the first one.
* ids are R-<section>-<n>, n counting from 1 per section in document order.

Regeneration merges the hand-filled "tests" and "not_testable" of an existing
spec/requirements.json for every id whose text is unchanged; an id whose text changed (or that
disappeared) loses its mapping and is listed in a warning on stderr.

Conformance tests (ids ISS-..., VER-...) declare the requirement ids they cover in the runner's
catalogue; `--catalog FILE` (the output of `ajwt conformance list --json`) makes those claims the
only conformance-test entries of "tests" (other entries are kept).  The Rust test
conformance/tests/requirements.rs fails when the two disagree, so run

    cargo run -q -p ajwt-cli -- conformance list --json > /tmp/catalog.json
    python3 conformance/tools/extract_requirements.py --catalog /tmp/catalog.json

after changing the catalogue.  A requirement with tests has "not_testable": null.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

DRAFT_NAME = "draft-goswami-agentic-jwt-00"
GENERATOR = "conformance/tools/extract_requirements.py"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DRAFTS = [
    REPO_ROOT.parent / "shared" / "spec" / f"{DRAFT_NAME}.txt",
    Path("/work/shared/spec") / f"{DRAFT_NAME}.txt",
]
JSON_OUT = REPO_ROOT / "spec" / "requirements.json"
MD_OUT = REPO_ROOT / "spec" / "requirements.md"
MAX_TEXT = 300

KEYWORD_RE = re.compile(
    r"\b(MUST NOT|MUST|REQUIRED|SHALL NOT|SHALL|SHOULD NOT|SHOULD|NOT RECOMMENDED|"
    r"RECOMMENDED|MAY|OPTIONAL)\b"
)
TIER = {
    "MUST NOT": 3, "MUST": 3, "REQUIRED": 3, "SHALL NOT": 3, "SHALL": 3,
    "SHOULD NOT": 2, "SHOULD": 2, "NOT RECOMMENDED": 2, "RECOMMENDED": 2,
    "MAY": 1, "OPTIONAL": 1,
}
LEVEL_ORDER = ["MUST", "MUST NOT", "REQUIRED", "SHALL", "SHALL NOT", "SHOULD", "SHOULD NOT",
               "RECOMMENDED", "NOT RECOMMENDED", "MAY", "OPTIONAL"]
SKIP_SECTIONS = {"1.2"}  # Requirements Language boilerplate
NON_EXPANDING_INTRO = re.compile(r"(because|to prevent|including|such as):$")

FOOTER_RE = re.compile(r"^Goswami\s.*\[Page \d+\]\s*$")
HEADER_RE = re.compile(r"^Internet-Draft\s.*\b\d{4}\s*$")
HEADING_RE = re.compile(r"^(\d+(?:\.\d+)*)\.\s+\S")
APPENDIX_RE = re.compile(r"^Appendix ([A-Z](?:\.\d+)*)\.?\s")
LIST_RE = re.compile(r"^(\s*)(\*|\d+\.)(\s+)\S")
DEF_HEAD_RE = re.compile(
    r"^([^.:]{1,60}):\s*(REQUIRED|OPTIONAL|RECOMMENDED|NOT RECOMMENDED)(\s+when\s[^.]*)?\.$"
)
ART_CHARS = set("|+┌│└├─┐┘┤┬┴┼")


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def find_draft(arg: str | None) -> Path:
    if arg:
        p = Path(arg)
        if not p.exists():
            sys.exit(f"error: draft text not found: {p}")
        return p
    for p in DEFAULT_DRAFTS:
        if p.exists():
            return p
    sys.exit("error: draft text not found in: " + ", ".join(map(str, DEFAULT_DRAFTS)))


def strip_pages(raw: str) -> list[str]:
    """Remove page headers/footers; re-join paragraphs split by a page break."""
    lines = [l.replace("\f", "").rstrip() for l in raw.split("\n")]
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if FOOTER_RE.match(line):
            # drop trailing blank lines before the footer, the header after it and the blanks
            while out and not out[-1].strip():
                out.pop()
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or HEADER_RE.match(lines[j])):
                j += 1
            prev = out[-1] if out else ""
            nxt = lines[j] if j < len(lines) else ""
            joined = (
                prev.strip()
                and nxt.strip()
                and not re.search(r"[.:;]$", prev)
                and not LIST_RE.match(nxt)
                and not HEADING_RE.match(nxt)
                and indent(nxt) == indent(prev)
                and indent(prev) > 0
            )
            if not joined:
                out.append("")
            i = j
            continue
        if HEADER_RE.match(line) and i < 10:  # first-page header block
            out.append(line)
            i += 1
            continue
        out.append(line)
        i += 1
    return out


def blocks(lines: list[str]):
    cur: list[str] = []
    for l in lines:
        if l.strip():
            cur.append(l)
        elif cur:
            yield cur
            cur = []
    if cur:
        yield cur


def join_lines(lines: list[str]) -> str:
    text = ""
    for l in lines:
        s = l.strip()
        if not text:
            text = s
        elif re.search(r"[A-Za-z]-$", text):
            text += s
        elif re.search(r"[.!?][\"')\]]?$", text):
            text += "  " + s  # keep the two-space sentence separator across line ends
        else:
            text += " " + s
    return text


def sentences(text: str) -> list[str]:
    out, start = [], 0
    for m in re.finditer(r"[.!?][\"')\]]?(\s{2,})(?=\S)", text):
        out.append(text[start:m.start(1)])
        start = m.end(1)
    out.append(text[start:])
    return [" ".join(s.split()) for s in out if s.strip()]


def level_of(text: str) -> str | None:
    best = None
    for m in KEYWORD_RE.finditer(text):
        kw = m.group(1)
        if best is None or TIER[kw] > TIER[best]:
            best = kw
    return best


def shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= MAX_TEXT:
        return text
    cut = text[: MAX_TEXT - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


class Unit:
    """A paragraph or list item with its nested list items."""

    def __init__(self, kind: str, text: str, section: str, key: float, body: int):
        self.kind, self.text, self.section = kind, text, section
        self.key, self.body = key, body
        self.children: list[Unit] = []

    def full_text(self) -> str:
        t = self.text
        for c in self.children:
            if c.kind == "item":
                t += " • " + c.full_text()
        return t


def parse_units(lines: list[str]) -> list[Unit]:
    units: list[Unit] = []
    section = "0"
    stack: list[Unit] = []
    for blk in blocks(lines):
        first = blk[0]
        ind = indent(first)
        if ind == 0:
            m = HEADING_RE.match(first) or APPENDIX_RE.match(first)
            if m:
                section = m.group(1)
            else:
                section = re.sub(r"[^A-Za-z0-9]+", "-", first.strip()).strip("-").lower()
            stack = []
            continue
        if first.strip()[0] in ART_CHARS or any(ch in ART_CHARS - set("|+") for ch in first):
            continue  # table or diagram
        lm = LIST_RE.match(first)
        if lm:
            m_ind = len(lm.group(1))
            body = m_ind + len(lm.group(2)) + len(lm.group(3))
            while stack and stack[-1].key >= m_ind:
                stack.pop()
            text = join_lines([first[body:]] + blk[1:])
            u = Unit("item", text, section, m_ind, body)
        else:
            while stack and stack[-1].key >= ind - 0.5:
                stack.pop()
            limit = stack[-1].body if stack else 3
            if ind > limit:
                continue  # figure / code / example
            body = max([ind] + [indent(l) for l in blk[1:]])
            u = Unit("para", join_lines(blk), section, ind - 0.5, body)
        if stack:
            stack[-1].children.append(u)
        units.append(u)
        stack.append(u)
    return units


def extract(draft_text: str) -> list[dict]:
    units = parse_units(strip_pages(draft_text))
    reqs: list[tuple[str, str, str]] = []  # (section, level, text)
    expanded: set[int] = set()  # ids of items already consumed by an intro

    for u in units:
        if u.section in SKIP_SECTIONS:
            continue
        if u.kind == "item" and id(u) in expanded:
            continue
        sents = sentences(u.text)
        # merge "term: REQUIRED." with the sentence that follows it
        term = None
        merged: list[str] = []
        i = 0
        while i < len(sents):
            s = sents[i]
            dm = DEF_HEAD_RE.match(s)
            if dm and i == 0:
                term = dm.group(1).strip()
                if i + 1 < len(sents):
                    s = s + " " + sents[i + 1]
                    i += 1
            merged.append(s)
            i += 1
        for idx, s in enumerate(merged):
            if not KEYWORD_RE.search(s):
                continue
            if term and idx > 0 and KEYWORD_RE.match(s):
                s = f"{term}: {s}"
            is_last = idx == len(merged) - 1
            items = [c for c in u.children if c.kind == "item"]
            if is_last and s.endswith(":") and items:
                if NON_EXPANDING_INTRO.search(s):
                    s = s + " " + "; ".join(c.full_text() for c in items)
                    for c in items:
                        _mark(c, expanded)
                else:
                    for c in items:
                        _mark(c, expanded)
                        t = s + " " + c.full_text()
                        reqs.append((u.section, level_of(t), t))
                    continue
            reqs.append((u.section, level_of(s), s))

    out, count = [], {}
    for section, level, text in reqs:
        count[section] = count.get(section, 0) + 1
        out.append({
            "id": f"R-{section}-{count[section]}",
            "section": section,
            "level": level,
            "text": shorten(text),
            "tests": [],
            "not_testable": None,
        })
    return out


def _mark(u: Unit, seen: set[int]) -> None:
    seen.add(id(u))
    for c in u.children:
        if c.kind == "item":
            _mark(c, seen)


def merge(new: list[dict], old_doc: dict | None) -> list[str]:
    """Copy tests/not_testable from old requirements with the same id and text."""
    warnings: list[str] = []
    if not old_doc:
        return warnings
    old = {r["id"]: r for r in old_doc.get("requirements", [])}
    new_ids = {r["id"] for r in new}
    for r in new:
        o = old.get(r["id"])
        if o is None:
            continue
        if o.get("text") == r["text"]:
            r["tests"] = list(o.get("tests") or [])
            r["not_testable"] = o.get("not_testable")
        elif o.get("tests") or o.get("not_testable"):
            warnings.append(f"{r['id']}: text changed, mapping dropped (was: {o.get('text')!r})")
    for oid, o in old.items():
        if oid not in new_ids and (o.get("tests") or o.get("not_testable")):
            warnings.append(f"{oid}: no longer extracted, mapping dropped")
    return warnings


CATALOG_PREFIXES = ("ISS-", "VER-")


def apply_catalog(reqs: list[dict], catalog: list[dict]) -> list[str]:
    """Make the catalogue's claims the conformance-test entries of each requirement."""
    errors: list[str] = []
    by_id = {r["id"]: r for r in reqs}
    claims: dict[str, list[str]] = {}
    for t in catalog:
        if not t["id"].startswith(CATALOG_PREFIXES):
            continue
        for rid in t.get("requirements", []):
            if rid not in by_id:
                errors.append(f"catalogue test {t['id']} claims unknown requirement {rid}")
                continue
            claims.setdefault(rid, []).append(t["id"])
    for r in reqs:
        kept = [t for t in r["tests"] if not t.startswith(CATALOG_PREFIXES)]
        r["tests"] = kept + claims.get(r["id"], [])
        if r["tests"]:
            r["not_testable"] = None
    return errors


def render_json(reqs: list[dict]) -> str:
    doc = {"draft": DRAFT_NAME, "generator": GENERATOR, "requirements": reqs}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_md(reqs: list[dict]) -> str:
    out = [
        f"# Requirements of {DRAFT_NAME}",
        "",
        f"Generated by `{GENERATOR}` from the draft text; do not edit by hand. The mapping",
        "(`tests`, `not_testable`) is edited in `requirements.json` and kept on regeneration.",
        "",
        "| level | requirements | covered | not testable | open |",
        "|---|---:|---:|---:|---:|",
    ]
    for lvl in LEVEL_ORDER:
        rs = [r for r in reqs if r["level"] == lvl]
        if not rs:
            continue
        cov = sum(1 for r in rs if r["tests"])
        nt = sum(1 for r in rs if not r["tests"] and r["not_testable"])
        out.append(f"| {lvl} | {len(rs)} | {cov} | {nt} | {len(rs) - cov - nt} |")
    cov = sum(1 for r in reqs if r["tests"])
    nt = sum(1 for r in reqs if not r["tests"] and r["not_testable"])
    out.append(f"| **total** | {len(reqs)} | {cov} | {nt} | {len(reqs) - cov - nt} |")
    section = None
    for r in reqs:
        if r["section"] != section:
            section = r["section"]
            out += ["", f"## Section {section}", "",
                    "| id | level | text | covered by / not testable |", "|---|---|---|---|"]
        if r["tests"]:
            cell = "<br>".join(f"`{t}`" for t in r["tests"])
        elif r["not_testable"]:
            cell = "not testable: " + r["not_testable"]
        else:
            cell = "—"
        out.append(f"| {r['id']} | {r['level']} | {md_cell(r['text'])} | {md_cell(cell)} |")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("draft", nargs="?", help="path of the draft text")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if spec/requirements.json or .md differ from what would be written")
    ap.add_argument("--catalog", metavar="FILE",
                    help="output of `ajwt conformance list --json`: sets the ISS-/VER- test ids")
    args = ap.parse_args()

    draft = find_draft(args.draft)
    reqs = extract(draft.read_text(encoding="utf-8"))
    old_doc = None
    if JSON_OUT.exists():
        try:
            old_doc = json.loads(JSON_OUT.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            print(f"warning: existing {JSON_OUT} is not valid JSON ({e}); mapping not merged",
                  file=sys.stderr)
    warnings = merge(reqs, old_doc)
    if args.catalog:
        warnings += apply_catalog(reqs, json.loads(Path(args.catalog).read_text(encoding="utf-8")))
    for w in warnings:
        print("warning: " + w, file=sys.stderr)
    js, md = render_json(reqs), render_md(reqs)

    if args.check:
        stale = [p for p, want in ((JSON_OUT, js), (MD_OUT, md))
                 if not p.exists() or p.read_text(encoding="utf-8") != want]
        for p in stale:
            print(f"{p.relative_to(REPO_ROOT)} is out of date; run {GENERATOR}", file=sys.stderr)
        return 1 if stale or warnings else 0

    JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(js, encoding="utf-8")
    MD_OUT.write_text(md, encoding="utf-8")
    print(f"wrote {len(reqs)} requirements to {JSON_OUT.relative_to(REPO_ROOT)} and "
          f"{MD_OUT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
