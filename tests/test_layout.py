"""The package's shape: imports flow one way (no cycle, no late import to dodge one), and no module is a sprawl."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import cla_lib

PACKAGE = Path(cla_lib.__file__).parent
# `cla` imports what a command needs when it runs, so that `cla --help` does not wait for torch: the one module
# allowed imports inside functions.
LAZY_MODULES = {"cla_lib.cli"}
MAX_LINES = 500
CHAPTERS = sorted((PACKAGE.parent / "book").glob("*.ipynb"))
MAX_CELL_LINES = 15


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(node: ast.AST) -> set[str]:
    """The cla_lib modules an import statement loads: the module itself and every package above it."""
    names = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    loaded = set()
    for name in names:
        parts = name.split(".")
        loaded |= {".".join(parts[:end]) for end in range(1, len(parts) + 1)}
    return {name for name in loaded if name in MODULES and name != "cla_lib"}


def all_imports(module: str) -> set[str]:
    """Every library module `module` imports, at the top or inside a function (a late import is an edge too)."""
    edges = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        edges |= imported_modules(node)
    return edges - {module}


def test_the_import_graph_has_no_cycle():
    graph = {module: all_imports(module) for module in MODULES}
    # A package's submodule is only reached through the package: importing it runs the package's __init__ first.
    for module in MODULES:
        parent = module.rpartition(".")[0]
        if parent in MODULES and parent != "cla_lib":
            graph[module] = graph[module] | {parent} - {module}
            graph[module] -= {module}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if target in path or state.get(target) == "open":
                # A package's own __init__ importing its submodules is the one legitimate back edge.
                if not (target.startswith(module + ".") or module.startswith(target + ".")):
                    raise AssertionError(" -> ".join(path + [module, target]))
                continue
            if target not in state:
                visit(target, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_no_module_imports_the_library_inside_a_function():
    late = []
    for module, path in MODULES.items():
        if module in LAZY_MODULES:
            continue
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                late += [f"{module}:{node.lineno}" for node in ast.walk(function)
                         if isinstance(node, (ast.Import, ast.ImportFrom)) and imported_modules(node)]
    assert late == []


# Packages a function may import when it runs: each takes long to import, or is optional, and most paths that load
# the module never need it (pandas only where the module and its imports do not load it anyway). Anything else,
# the standard library included, is imported at the top, where a reader sees what a module depends on.
LATE_PACKAGES = ("peft", "accelerate", "safetensors", "httpx", "tokenizers", "datasets", "pyarrow", "huggingface_hub",
                 "papermill", "jupyter_client", "pandas", "torch.distributed")


def test_a_function_imports_a_package_only_where_that_saves_start_up_time():
    def names(node) -> list[str]:
        return [node.module] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]

    late = []
    for module, path in MODULES.items():
        if module in LAZY_MODULES:
            continue
        tree = ast.parse(path.read_text())
        on_top = {name.split(".")[0] for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                  for name in names(node) if name}
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and not imported_modules(node):
                    late += [f"{module}:{node.lineno} {name}" for name in names(node)
                             if not name.startswith(LATE_PACKAGES) or name.split(".")[0] in on_top - {"torch"}]
    assert late == []


def test_a_model_is_a_reference_before_it_loads_and_an_lm_after():
    """No parameter or local is called `model`: what names a model to load is a `reference` (a string or a
    `ModelRef`), a loaded one is an `lm`, so a signature says which it takes."""
    named_model = []
    for module, path in MODULES.items():
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
                stored = [node for node in ast.walk(function) if isinstance(node, ast.Name) and node.id == "model"
                          and isinstance(node.ctx, ast.Store)]
                if any(argument.arg == "model" for argument in arguments) or stored:
                    named_model.append(f"{module}:{function.lineno} {function.name}")
    assert named_model == []


def test_no_module_is_over_500_lines():
    long = {module: length for module, path in MODULES.items()
            if (length := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_model_reference_is_built_as_a_string_outside_the_model_package():
    """An organism's name is made by `ModelRef.of_organism` and passed as a `ModelRef`, never rebuilt as text."""
    built = []
    for module, path in MODULES.items():
        if module.startswith("cla_lib.model"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
                if re.search(r"organism(:\{\}|@\{\}|\{\}@)", text):
                    built.append(f"{module}:{node.lineno}: {text}")
    assert built == []


def test_the_root_holds_only_the_command_line_and_the_layers_are_packages():
    """Every module sits in the package of its layer (docs/architecture.md captions them); only `cla` is loose."""
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "cli.py"]
    assert {"core", "plane", "claims", "book"} <= {path.name for path in PACKAGE.iterdir() if path.is_dir()}


def test_module_docstrings_are_at_most_12_lines():
    """Why a module exists fits on a screen; the longer rationale lives in docs/design-notes.md."""
    long = {module: length for module, path in MODULES.items()
            if (length := len((ast.get_docstring(ast.parse(path.read_text()), clean=False) or "").splitlines())) > 12}
    assert long == {}


def test_no_module_imports_another_modules_private_helper():
    """A helper another module needs is public: an underscore name means "this module's own"."""
    private = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cla_lib"):
                private += [f"{module}: {node.module}.{alias.name}" for alias in node.names
                            if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert private == []


def test_chapter_code_cells_are_at_most_15_lines():
    """A chapter's cell calls the library, displays and glues: the loops, the analysis and the conditional wording live
    in `cla_lib`, where they are tested and reused, so a cell that grows past a screenful is logic in the wrong place
    (the parameters cell included)."""
    long = {}
    for path in CHAPTERS:
        cells = [cell for cell in json.loads(path.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "code"]
        for number, cell in enumerate(cells):
            if (length := len("".join(cell["source"]).splitlines())) > MAX_CELL_LINES:
                long[f"{path.name}, code cell {number}"] = length
    assert CHAPTERS and long == {}
