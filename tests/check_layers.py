#!/usr/bin/env python3
"""Fails when an include goes against the layers of src/ (docs/architecture.md).

A file may include headers of its own folder and of lower layers only; two
folders of the same rank (journal and events, http and export) stay strangers.
Within a folder, headers must not include each other in a circle.  Every
folder under src/ must have a rank here, so a new folder is a decision.
"""
import os
import re
import sys

RANKS = {
    "base": 0,
    "journal": 1,
    "events": 1,
    "agents": 2,
    "adapters": 3,
    "sessions": 4,
    "workspace": 4,  # files and processes beside the sessions (issue 17)
    "http": 5,
    "export": 5,
    "cli": 6,
    "": 7,  # src/main.c
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    """The layer folder of a file, given relative to the repository root."""
    parts = path.split("/")
    if parts[0] == "adapters":
        return "adapters"
    if parts[0] == "src":
        return parts[1] if len(parts) > 2 else ""
    return None


def resolve(root, including, name):
    """Where a quoted include lands: the includer's folder, then src/, then the root."""
    for base in (os.path.dirname(including), "src", ""):
        candidate = os.path.normpath(os.path.join(base, name))
        if os.path.exists(os.path.join(root, candidate)):
            return candidate
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    files = []
    for top in ("src", "adapters"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for n in names:
                if n.endswith((".c", ".h", ".def")):
                    files.append(os.path.relpath(os.path.join(dirpath, n), root))
    problems = []
    graph = {}
    for f in sorted(files):
        mine = folder_of(f)
        if mine not in RANKS:
            problems.append(f"{f}: folder src/{mine} has no layer in tests/check_layers.py")
            continue
        with open(os.path.join(root, f), encoding="utf-8") as fh:
            text = fh.read()
        for name in INCLUDE.findall(text):
            target = resolve(root, f, name)
            if target is None:
                continue  # a generated file (migrations_data.c) or a test helper
            theirs = folder_of(target)
            if theirs is None or theirs == mine:
                graph.setdefault(f, []).append(target)
                continue
            if theirs not in RANKS:
                problems.append(f"{f}: includes {target} from a folder with no layer")
            elif RANKS[theirs] >= RANKS[mine]:
                problems.append(f"{f} ({mine or 'top'}, layer {RANKS[mine]}) includes {target} "
                                f"({theirs}, layer {RANKS[theirs]})")
            graph.setdefault(f, []).append(target)
    # A circle of includes, whatever the folders.
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                problems.append("include circle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    for p in problems:
        print(p)
    print(f"check_layers: {len(files)} files, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
