"""The grading package stays easy to change: its modules import each other without a cycle
(read from their top-level imports), no module or function grows too long, and an import
inside a function is never a way round a cycle and always says why it is there."""

import ast
from pathlib import Path

import d2lcnn.grading

PACKAGE = "d2lcnn.grading"
FOLDER = Path(d2lcnn.grading.__file__).parent
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 120
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _modules() -> dict[str, Path]:
    """``d2lcnn.grading.x`` -> its file (``d2lcnn.grading`` for ``__init__.py``)."""
    return {PACKAGE if p.stem == "__init__" else f"{PACKAGE}.{p.stem}": p
            for p in sorted(FOLDER.glob("*.py"))}


def _imports(tree: ast.AST, *, in_function: bool = False):
    """``(import node, inside a function?)`` for every import statement in ``tree``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
        yield from _imports(node, in_function=in_function or isinstance(node, FUNCTIONS))


def _targets(node, importer: str, modules) -> set[str]:
    """The package's modules that an import statement in ``importer`` loads by name."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the importer's package
            package = importer if importer == PACKAGE else importer.rsplit(".", 1)[0]
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                 for a in node.names]
    found = set()
    for name in names:
        while name and name not in modules:  # d2lcnn.grading.x.y -> d2lcnn.grading.x
            name = name.rpartition(".")[0]
        if name.startswith(PACKAGE):
            found.add(name)
    return found


def import_graph(*, functions: bool = False) -> dict[str, set[str]]:
    """module -> the package's modules it imports at import time (with ``functions``, also
    those imported inside its functions)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        graph[name] = {t for node, inside in _imports(tree) if functions or not inside
                       for t in _targets(node, name, modules)} - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle ``[a, b, ..., a]`` in ``graph``, or None."""
    done, path = set(), []

    def visit(node):
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_the_import_graph_sees_the_real_imports():
    graph = import_graph()
    assert set(graph) >= {PACKAGE, f"{PACKAGE}.grade", f"{PACKAGE}.authoring",
                          f"{PACKAGE}.bundle_format", f"{PACKAGE}.cells"}
    assert f"{PACKAGE}.checks" in graph[f"{PACKAGE}.student"]  # from d2lcnn.grading import checks
    assert f"{PACKAGE}.student" in graph[PACKAGE]
    for side in ("authoring", "grade"):  # both sides share the bundle format and cell roles
        reach, todo = set(), [f"{PACKAGE}.{side}"]
        while todo:
            for nxt in graph[todo.pop()] - reach:
                reach.add(nxt)
                todo.append(nxt)
        assert {f"{PACKAGE}.bundle_format", f"{PACKAGE}.cells"} <= reach, side


def test_the_grading_modules_import_each_other_without_a_cycle():
    assert find_cycle(import_graph()) is None
    assert find_cycle(import_graph(functions=True)) is None  # none hidden in a function


def test_no_module_or_function_is_too_long():
    too_long = []
    for name, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {n} lines")
    assert not too_long, too_long


def _commented(lines: list[str], i: int) -> bool:
    """A comment on line ``i`` (0-based) or on the line above its run of import lines."""
    if "#" in lines[i]:
        return True
    while i > 0 and lines[i - 1].lstrip().startswith(("import ", "from ")):
        i -= 1
    return i > 0 and lines[i - 1].lstrip().startswith("#")


def test_imports_inside_functions_say_why_and_never_dodge_a_cycle():
    modules = _modules()
    bad = []
    for name, path in modules.items():
        lines = path.read_text().splitlines()
        for node, inside in _imports(ast.parse("\n".join(lines))):
            if not inside:
                continue
            where = f"{name}, line {node.lineno}"
            if _targets(node, name, modules):
                bad.append(f"{where}: imports a grading module inside a function")
            if not _commented(lines, node.lineno - 1):
                bad.append(f"{where}: no comment saying why the import is inside a function")
    assert not bad, bad
