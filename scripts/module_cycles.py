#!/usr/bin/env python3
"""Import cycles between the modules of one Rust crate, read from `crate::` / `super::` paths.

usage: module_cycles.py CRATE_SRC_DIR [--depth N]

Modules are named by their path under src/ (foo.rs and foo/mod.rs are `foo`); with --depth 1 (the
default) only the top-level module of each path counts, so `billing::checkout -> sites` is an edge
from `billing` to `sites`. Test modules (`#[cfg(test)]` to the end of the file) are left out.
Prints each cycle (a strongly connected component of more than one module) and, last, the count.
Exit 0 when there is none.
"""
import os
import re
import sys

src = sys.argv[1]
depth = int(sys.argv[sys.argv.index("--depth") + 1]) if "--depth" in sys.argv else 1


def module_of(path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def top(parts):
    return "::".join(parts[:depth]) if parts else ""


edges = {}
path_re = re.compile(r"\b(crate|super)((?:::\w+)+)")
group_re = re.compile(r"\buse\s+(crate|super)::\{([^;]*)\};", re.S)
for root, _, files in os.walk(src):
    for name in files:
        if not name.endswith(".rs"):
            continue
        path = os.path.join(root, name)
        text = open(path, encoding="utf-8", errors="replace").read()
        cut = re.search(r"^#\[cfg\(test\)\]", text, re.M)
        if cut:
            text = text[: cut.start()]
        here = module_of(path)
        is_mod_file = name in ("mod.rs", "lib.rs", "main.rs")
        refs = []
        for m in path_re.finditer(text):
            refs.append((m.group(1), [s for s in m.group(2).split("::") if s]))
        for m in group_re.finditer(text):
            for item in re.split(r",", m.group(2)):
                item = item.strip().split("::")[0].strip("{} \n")
                if item and item != "self":
                    refs.append((m.group(1), [item]))
        for kind, segs in refs:
            if kind == "crate":
                target = segs
            else:
                base = here if is_mod_file else here[:-1]
                ups = 1
                while segs and segs[0] == "super":
                    segs = segs[1:]
                    ups += 1
                base = base[: len(base) - (ups - 1)] if ups > 1 else base
                base = base[:-1] if not is_mod_file or ups > 1 else base[:-1]
                target = base + segs
            a, b = top(here), top(target)
            if a and b and a != b and not b[0].isupper():
                edges.setdefault(a, set()).add(b)

# Tarjan's strongly connected components.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
nodes = set(edges) | {b for bs in edges.values() for b in bs}


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges.get(v, ()):
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
            sccs.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in sorted(nodes):
    if v not in index:
        visit(v)
for comp in sccs:
    inner = [f"{a}->{b}" for a in comp for b in sorted(edges.get(a, ())) if b in comp]
    print("cycle:", ", ".join(comp), "|", " ".join(inner))
print(f"{len(sccs)} cycles among {len(nodes)} modules of {src} (depth {depth})")
sys.exit(1 if sccs else 0)
