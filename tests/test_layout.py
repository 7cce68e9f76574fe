"""The package layout, read from the source (ast, nothing imported): no module over 300 lines; the core, stats/ and
studies/ never import a display library; imports point one way (core <- stats <- studies <- plotting, widgets);
no import cycle among bnlib's modules, package __init__ files included.

The one-way rule also keeps the run cache's code fingerprint sound: it hashes the core, stats/ and studies/
only, so none of them may run code from plotting/, widgets/ or exercises/.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "bnlib"
SUBPACKAGES = {path.parent.name for path in PACKAGE_DIR.glob("*/__init__.py")}  # stats, studies, plotting, ...
MAX_LINES = 300
DISPLAY_LIBRARIES = {"matplotlib", "ipywidgets", "anywidget", "ipympl", "IPython"}
COMPUTING_ROLES = ("core", "stats", "studies")  # what computes results (and is in the cache key)
FORBIDDEN_ROLES = {  # role -> the roles it never imports
    "core": {"stats", "studies", "plotting", "widgets", "exercises"},
    "stats": {"studies", "plotting", "widgets", "exercises"},
    "studies": {"plotting", "widgets", "exercises"},
}


@dataclass(frozen=True)
class Import:
    """One imported module, absolute (e.g. "bnlib.stats.recording"), and the statement at `line` that imports it."""

    target: str
    line: int
    statement: str


def module_sources():
    """{module name: source path} for every module of bnlib found on disk ("bnlib.stats" for stats/__init__.py)."""
    sources = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        sources[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return sources


def role(name):
    """"core" for bnlib and its top-level modules, else the subpackage's name ("stats", "studies", ...)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else "core"


def imports(name, source, known, is_package=False):
    """Every module that module `name` imports (at module level or inside functions), in the order written.

    `from P import x` imports P.x when that is one of the `known` modules, else P; relative imports are resolved.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = node.module or ""
            if node.level:  # relative: from the package of `name`, one level up per dot after the first
                package = name.split(".") if is_package else name.split(".")[:-1]
                origin = ".".join(package[: len(package) - node.level + 1] + ([origin] if origin else []))
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                       for alias in node.names]
        else:
            continue
        statement = ast.get_source_segment(source, node)
        found += [Import(target, node.lineno, statement) for target in dict.fromkeys(targets)]
    return sorted(found, key=lambda found: found.line)


def import_graph():
    """{module name: [Import, ...]} for every module of bnlib."""
    sources = module_sources()
    return {name: imports(name, path.read_text(), sources, path.name == "__init__.py")
            for name, path in sources.items()}


def find_cycles(edges):
    """Import cycles in `edges` ({module: modules it imports}), each as [a, b, ..., a]: a depth-first search
    reports every edge back to a module on the current path, so each group of modules in a cycle shows."""
    cycles, on_path, done = [], [], set()

    def visit(node):
        on_path.append(node)
        for target in sorted(edges.get(node, ())):
            if target in on_path:
                cycles.append(on_path[on_path.index(target):] + [target])
            elif target not in done:
                visit(target)
        on_path.pop()
        done.add(node)

    for node in sorted(edges):
        if node not in done:
            visit(node)
    return cycles


GRAPH = import_graph()


def where(name, found):
    return f"{name} (line {found.line}: {found.statement})"


def test_the_walk_finds_every_role_and_resolves_imports():
    assert {role(name) for name in GRAPH} >= {"core", *FORBIDDEN_ROLES, "plotting", "widgets", "exercises"}
    assert {"bnlib", "bnlib.train", "bnlib.stats", "bnlib.stats.running"} <= GRAPH.keys()
    assert role("bnlib") == role("bnlib.train") == "core" and role("bnlib.stats") == role("bnlib.stats.running")
    source = ("import torch.nn as nn\nfrom bnlib import checks, settings\n\ndef f():\n    from . import running\n"
              "    from ..plotting.curves import plot_curves\n")
    known = {"bnlib", "bnlib.checks", "bnlib.stats", "bnlib.stats.running", "bnlib.plotting.curves"}
    found = imports("bnlib.stats.x", source, known)
    assert [(item.target, item.line) for item in found] == [
        ("torch.nn", 1), ("bnlib.checks", 2), ("bnlib", 2), ("bnlib.stats.running", 5), ("bnlib.plotting.curves", 6)]
    assert [item.target for item in imports("bnlib.stats", "from . import running", known, is_package=True)] == [
        "bnlib.stats.running"]


def test_find_cycles_finds_each_cycle_and_nothing_else():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    assert find_cycles({"a": {"a"}}) == [["a", "a"]]


def test_no_module_is_over_300_lines():
    lines = {name: len(path.read_text().splitlines()) for name, path in module_sources().items()}
    too_long = [f"{name}: {count} lines" for name, count in lines.items() if count > MAX_LINES]
    assert not too_long, f"modules over {MAX_LINES} lines (split them by role):\n" + "\n".join(too_long)


def test_the_core_stats_and_studies_import_no_display_library():
    offending = [f"{where(name, found)} imports {found.target}" for name, found_all in GRAPH.items()
                 if role(name) in COMPUTING_ROLES for found in found_all
                 if found.target.split(".")[0] in DISPLAY_LIBRARIES]
    assert not offending, "display libraries imported where results are computed:\n" + "\n".join(offending)


def test_imports_point_one_way():
    offending = [f"{where(name, found)}: {role(name)} never imports {role(found.target)}"
                 for name, found_all in GRAPH.items() for found in found_all
                 if found.target.split(".")[0] == "bnlib" and role(found.target) in FORBIDDEN_ROLES.get(role(name), ())]
    assert not offending, "imports against core <- stats <- studies <- plotting, widgets:\n" + "\n".join(offending)


def test_no_import_cycle():
    edges = {name: {found.target for found in found_all if found.target in GRAPH} for name, found_all in GRAPH.items()}
    described = []
    for cycle in find_cycles(edges):
        steps = [where(source, next(found for found in GRAPH[source] if found.target == target))
                 for source, target in zip(cycle, cycle[1:], strict=False)]
        described.append(" -> ".join(steps) + f" -> {cycle[-1]}")
    assert not described, "import cycles among bnlib's modules:\n" + "\n".join(described)
