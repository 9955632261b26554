"""The package's layers, checked from the imports: a module imports only its own layer and the layers below it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "maskdetector"

# Lowest first. Layers of the same rank are siblings and must not import each other.
RANKS = {
    "core": 0,  # types, errors, config, settings, workers: the modules directly in maskdetector/
    "vision": 1,
    "sources": 2,
    "analytics": 2,
    "training": 2,
    "web": 3,
    "cli": 4,
}


def layer_of(module: str) -> str:
    """maskdetector.vision.detectors.haar -> vision; maskdetector.types -> core; maskdetector.cli -> cli."""
    parts = module.split(".")
    if len(parts) > 2 or parts[-1] == "cli" or (PACKAGE / parts[-1]).is_dir():
        return parts[1]
    return "core"


def imports() -> list[tuple[str, str]]:
    """(importing module, imported maskdetector module) for every module of the package."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("maskdetector."):
                found.append((module, node.module))
            elif isinstance(node, ast.Import):
                found += [(module, a.name) for a in node.names if a.name.startswith("maskdetector.")]
    return found


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert packages <= set(RANKS)


def violations(edges: list[tuple[str, str]]) -> list[str]:
    wrong = []
    for module, imported in edges:
        own, other = layer_of(module), layer_of(imported)
        if own != other and RANKS[other] >= RANKS[own]:
            wrong.append(f"{module} ({own}) imports {imported} ({other})")
    return wrong


def test_no_module_imports_a_higher_or_sibling_layer():
    wrong = violations(imports())
    assert not wrong, "\n".join(wrong)


def test_the_rule_catches_upward_and_sibling_imports():
    allowed = [
        ("maskdetector.web.app", "maskdetector.vision.pipeline"),
        ("maskdetector.vision.boxes", "maskdetector.types"),
    ]
    upward = ("maskdetector.vision.pipeline", "maskdetector.web.streaming")
    sibling = ("maskdetector.analytics.alerts", "maskdetector.sources.capture")
    core_up = ("maskdetector.settings", "maskdetector.cli")
    assert violations(allowed) == []
    assert len(violations([upward, sibling, core_up])) == 3


# ----------------------------------------------------------------------------------------------- sizes

ROOT = PACKAGE.parent
MODULE_LINES = 300  # a module of the package
FUNCTION_LINES = 60  # a function or method, from its `def` line to its last line
FUNCTION_PLACES = ["maskdetector", "benchmarks", "train.py", "app.py", "detect.py", "evaluate.py"]


def python_files(places: list[str]) -> list[Path]:
    return [path for place in places for path in sorted((ROOT / place).rglob("*.py")) or [ROOT / place]]


def long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    """(name, lines) of every function or method of `source` longer than `limit` lines."""
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_over_60_lines():
    wrong = [
        f"{path.relative_to(ROOT)}: {name} ({lines} lines)"
        for path in python_files(FUNCTION_PLACES)
        for name, lines in long_functions(path.read_text(), FUNCTION_LINES)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_module_of_the_package_over_300_lines():
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    long = {name: lines for name, lines in lengths.items() if lines > MODULE_LINES}
    assert not long, long


def test_the_function_rule_counts_every_line_of_a_function_and_a_method():
    short = "def short():\n" + "    x = 1\n" * 59
    method = "class C:\n    def long(self):\n" + "        x = 1\n" * 60
    assert long_functions(short + "\n\n" + method, FUNCTION_LINES) == [("long", 61)]
