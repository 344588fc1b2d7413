#!/usr/bin/env python3
"""Checks the direction of Cairn's module dependencies.

Reads every `.rs` file under src/, finds the modules each one names (`use crate::…`,
`crate::a::b::…` in code, `super::…`, `self::…`), and reports:

- every import cycle between modules (files), as the strongly connected components of that
  graph, each with one cycle spelled out;
- every dependency that points up the layers of docs/architecture.md.

Exit status: 0 when there is neither, 1 otherwise. `--graph` prints the edges instead.
Standard library only, linear in the size of the source.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SRC = os.path.join(ROOT, "src")

# Layers, from the top. A module may depend on its own layer's other modules (except where a
# layer says otherwise) and on the layers below; never on one above.
LAYERS = [
    ("entry", ["main", "lib", "cli", "web", "startup"]),
    ("app", ["app", "demo"]),
    ("subsystems", ["notify", "harvest", "ledger", "peers", "badges", "webmention", "net", "email", "opml", "markdown", "html"]),
    # The store, the validated types, the settings and the job runner know no use case.
    ("base", ["db", "domain", "config", "jobs", "tokens", "clock", "metrics"]),
]


def layer_of(module):
    top = module.split("::")[0]
    for i, (_, tops) in enumerate(LAYERS):
        if top in tops:
            return i
    return None


def module_files():
    """Maps module paths ("db::links") to files."""
    mods = {}
    for dirpath, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), SRC)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                name = rel[0]
            else:
                name = "::".join(rel)
            mods[name] = os.path.join(dirpath, f)
    return mods


COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'r#*"(?:.|\n)*?"#*|"(?:\\.|[^"\\])*"')
USE = re.compile(r"\buse\s+([^;]+);")
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def expand(tree):
    """Expands a `use` tree (`crate::{a, b::{c, d}}`) into its paths."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        for p in parts:
            if not p:
                continue
            b = p.find("{")
            if b >= 0 and p.endswith("}"):
                walk(prefix + p[:b], p[b + 1 : -1])
            else:
                out.append(prefix + p)

    walk("", tree)
    return out


def resolve(current, path, mods):
    """The deepest existing module that `path` (from the module `current`) names."""
    segs = path.split("::")
    head = segs[0]
    if head == "crate":
        base = []
    elif head in ("super", "self"):
        base = [] if current in ("lib", "main") else current.split("::")
        # A file `a/b.rs` or `a/b/mod.rs` is module a::b; `super` is a.
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
        segs = ["_"] + segs
    else:
        return None
    rest = [s.split(" as ")[0] for s in segs[1:]]
    best = None
    for n in range(len(rest) + 1):
        cand = "::".join(base + rest[:n])
        if cand in mods:
            best = cand
    return best


def edges(mods):
    graph = {m: set() for m in mods}
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        # Tests may reach anywhere; only what the program runs counts.
        cut = re.search(r"#\[cfg\(test\)\]\s*mod\s+tests\s*\{", text)
        if cut:
            text = text[: cut.start()]
        text = STRING.sub('""', COMMENT.sub("", text))
        found = []
        for m in USE.finditer(text):
            for p in expand(m.group(1)):
                if p.startswith(("crate::", "super::", "self::")):
                    found.append(p)
        for m in PATH.finditer(text):
            found.append(m.group(1) + m.group(2))
        for p in found:
            target = resolve(mod, p, mods)
            if target and target != mod and not mod.startswith(target + "::") and not target.startswith(mod + "::"):
                graph[mod].add(target)
    return graph


def sccs(graph):
    """Tarjan's algorithm, iterative."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def one_cycle(graph, comp):
    """A shortest cycle through the component's first module, by breadth-first search."""
    members = set(comp)
    start = comp[0]
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for n in frontier:
            for m in sorted(graph[n]):
                if m not in members:
                    continue
                if m == start:
                    path = [n]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return [start] + list(reversed(path[:-1])) + [n, start] if n != start else [start, start]
                if m not in prev:
                    prev[m] = n
                    nxt.append(m)
        frontier = nxt
    return comp


def main():
    mods = module_files()
    graph = edges(mods)
    if "--graph" in sys.argv:
        for m in sorted(graph):
            for t in sorted(graph[m]):
                print(f"{m} -> {t}")
        return 0
    bad = 0
    for comp in sccs(graph):
        bad += 1
        cyc = one_cycle(graph, comp)
        # one_cycle may repeat the start when the path is direct; tidy it.
        print(f"cycle of {len(comp)} modules: {', '.join(comp)}")
        print(f"  for example: {' -> '.join(dict.fromkeys(cyc[:-1]))} -> {cyc[0]}")
    for m in sorted(graph):
        lm = layer_of(m)
        for t in sorted(graph[m]):
            lt = layer_of(t)
            if lm is None or lt is None:
                continue
            if lt < lm:
                bad += 1
                print(f"upward: {m} ({LAYERS[lm][0]}) -> {t} ({LAYERS[lt][0]})")
    if bad:
        print(f"{bad} problem(s) in the module dependencies (see docs/architecture.md)")
        return 1
    print(f"module dependencies: {len(mods)} modules, no cycle, nothing points up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
