"""The package's structure (issue 14): no import circle, nothing imports the command line, fewer
floors than the 11 the package had, and README's Layout section matches the tree."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("structure", ROOT / "scripts" / "structure.py")
structure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(structure)


def test_imports_form_floors_without_a_circle_and_nothing_imports_the_cli():
    edges = structure.graph()
    floor = structure.floors(edges)  # raises on a circle
    assert len(set(floor.values())) <= 10
    assert not [m for m, deps in edges.items() if "qpaper.cli" in deps]
    assert all(floor[d] < floor[m] for m, deps in edges.items() for d in deps)


def test_the_floor_finder_names_a_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    try:
        structure.floors(edges)
    except ValueError as e:
        assert "a -> b -> c -> a" in str(e)
    else:
        raise AssertionError("a circle went unnoticed")
    assert structure.floors({"a": {"b"}, "b": set()}) == {"a": 1, "b": 0}


def test_readme_layout_names_every_module_and_shows_the_current_drawing():
    edges = structure.graph()
    assert structure.readme_block() == structure.text(edges, structure.floors(edges)), \
        "README's drawing is stale: python scripts/structure.py --readme"
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1]
    named = set(re.findall(r"\b(\w+)\.py\b", layout)) | set(re.findall(r"\b(\w+)/", layout))
    files = {p.stem for p in (ROOT / "qpaper").glob("*.py") if p.stem != "__init__"}
    assert files <= named, f"not in README's Layout: {sorted(files - named)}"
    assert {"baselines", "scripts", "notebooks", "models", "data", "results", "tests", "benchmarks"} <= named
