"""The structure drawing of the qpaper package: which module imports which, drawn in floors
(``python scripts/structure.py [-v] [--readme]``: ``-v`` lists every import, ``--readme`` rewrites
the drawing in README.md's Layout section).

A module's floor is one above the highest floor among the package modules it imports (imports
inside functions count too), so floor 0 imports nothing from the package. The drawing is honest
only when there is no circle: the script names the circle and exits 1 when there is one.
"""
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qpaper"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules):
    """Package modules imported anywhere in the file at `path` (relative imports resolved)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            hits = [n for n in names if n in modules] or ([target] if target in modules else [])
            found.update(hits)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
    found.discard(here)
    return found


def graph():
    """{module: set of package modules it imports}."""
    files = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    return {name: imports_of(path, files) for name, path in files.items()}


def floors(edges):
    """{module: floor}; raises ValueError naming a circle if there is one."""
    floor, visiting = {}, []

    def visit(name):
        if name in floor:
            return floor[name]
        if name in visiting:
            circle = visiting[visiting.index(name):] + [name]
            raise ValueError("import circle: " + " -> ".join(circle))
        visiting.append(name)
        floor[name] = 1 + max((visit(n) for n in edges[name]), default=-1)
        visiting.pop()
        return floor[name]

    for name in edges:
        visit(name)
    return floor


def drawing(edges, floor):
    lines = []
    for level in range(max(floor.values()), -1, -1):
        names = sorted(n for n in floor if floor[n] == level)
        lines.append(f"floor {level:2d}: " + "  ".join(n.removeprefix("qpaper.") or "qpaper" for n in names))
    return "\n".join(lines)


README = PACKAGE.parent / "README.md"
BEGIN, END = "<!-- structure:begin -->", "<!-- structure:end -->"


def text(edges, floor) -> str:
    """The drawing with its count line, as README shows it."""
    return (drawing(edges, floor) + f"\n{len(set(floor.values()))} floors, {len(edges)} modules, "
            f"{sum(len(v) for v in edges.values())} imports, no circle")


def readme_block() -> str:
    """The drawing README.md shows now (between its structure markers)."""
    s = README.read_text()
    return s.split(BEGIN, 1)[1].split(END, 1)[0].strip().removeprefix("```").removesuffix("```").strip()


def main():
    edges = graph()
    try:
        floor = floors(edges)
    except ValueError as error:
        print(f"structure: {error}", file=sys.stderr)
        return 1
    print(text(edges, floor))
    if "--readme" in sys.argv:  # rewrite README's drawing
        s = README.read_text()
        head, rest = s.split(BEGIN, 1)
        README.write_text(head + BEGIN + "\n```\n" + text(edges, floor) + "\n```\n" + END + rest.split(END, 1)[1])
        print(f"structure: drawing rewritten in {README}")
    if "-v" in sys.argv:
        for name in sorted(edges):
            print(f"{name} -> {', '.join(sorted(edges[name]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
