#!/usr/bin/env python3
"""The module graph of each workspace crate, and its cycles.

For every crate under the workspace, reads `src/` and records which
top-level module refers to which other (`crate::name` paths and
`use crate::{a, b}` lists; `super::` inside a module directory stays in that
module). Prints one line per module with what it uses, then the cycles
(strongly connected components of more than one module). Exits 1 if any
crate has a cycle, so CI can keep it that way.

    python3 scripts/module-graph.py            # every crate
    python3 scripts/module-graph.py runtime    # one crate
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["files", "policies", "ledger", "gate", "query", "sandbox", "runtime", "cli", "guest-sdk", "examples", "demo"]


def module_of(src: Path, path: Path) -> str:
    """`a` for src/a.rs, `a::b` for src/a/b.rs, `a` for src/a/mod.rs (two levels)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return "::".join(parts[:2])


def references(text: str, modules: set, own: str) -> set:
    found = set()
    for path in re.findall(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
        parts = path.split("::")
        two = "::".join(parts[:2])
        found.add(two if two in modules else parts[0])
    for group in re.findall(r"\bcrate::\{([^}]*)\}", text, flags=re.S):
        for item in group.split(","):
            name = item.strip().split("::")[0].strip()
            if name:
                found.add(name)
    # `super::x` inside a directory module names a sibling.
    if "::" in own:
        parent = own.split("::")[0]
        for name in re.findall(r"\bsuper::([a-z_][a-z0-9_]*)", text):
            if f"{parent}::{name}" in modules:
                found.add(f"{parent}::{name}")
    # A parent's own `mod` declarations and re-exports are not dependencies on its children.
    return {m for m in found if m in modules and not m.startswith(own + "::")}


def graph(crate: str) -> dict:
    src = ROOT / crate / "src"
    files = [p for p in src.rglob("*.rs")]
    modules = {module_of(src, p) for p in files} - {"lib", "main"}
    edges = {m: set() for m in modules | {"lib", "main"}}
    for p in files:
        m = module_of(src, p)
        text = p.read_text(encoding="utf-8")
        # Child modules (`mod x;` in a directory's mod.rs) belong to their parent's subtree.
        edges[m] |= references(text, modules, m) - {m}
    # A module depends on what its children depend on, outside its own subtree.
    for m in list(edges):
        if "::" in m:
            parent = m.split("::")[0]
            edges.setdefault(parent, set())
            edges[parent] |= {d for d in edges[m] if d != parent and not d.startswith(parent + "::")}
    return edges


def cycles(edges: dict) -> list:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    crates = sys.argv[1:] or CRATES
    bad = 0
    for crate in crates:
        if not (ROOT / crate / "src").is_dir():
            continue
        edges = graph(crate)
        print(f"## {crate}")
        for m in sorted(edges):
            if m in ("lib", "main") and not edges[m]:
                continue
            print(f"  {m} -> {', '.join(sorted(edges[m])) or '(nothing)'}")
        found = cycles(edges)
        for c in found:
            print(f"  CYCLE: {' <-> '.join(c)}")
        bad += len(found)
        if not found:
            print("  no cycles")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
