"""The package's shape: no import cycle at any depth, and imports run one way.

STYLE.md: "The import graph runs one way: CLI -> training -> models ->
layers and nodes -> backend -> kernels.  A lower module never imports a
higher one, not even inside a function."  The graph here is read from the
source with ``ast``, so an import hidden inside a function counts as much
as one at the top of a file.
"""

import ast
from pathlib import Path

import pytest

import numpy_vae

PACKAGE_DIR = Path(numpy_vae.__file__).parent

# Lowest first.  A module may import modules of its own layer or of a lower one.
# A new module joins the layer of what it is (the test fails until it does).
LAYERS = {
    "kernels": {"numpy_vae.ops", "numpy_vae.im2col", "numpy_vae.backends.numba_ops",
                "numpy_vae.backends.cupy_ops"},
    "backend": {"numpy_vae.backends", "numpy_vae.backends.base", "numpy_vae.backends.cupy_backend",
                "numpy_vae.backend"},
    "layers and nodes": {"numpy_vae.layers", "numpy_vae.conv", "numpy_vae.reshape", "numpy_vae.kl",
                         "numpy_vae.reparameterize", "numpy_vae.likelihoods", "numpy_vae.flat",
                         "numpy_vae.optim", "numpy_vae.gradcheck", "numpy_vae.iwae",
                         "numpy_vae.quantize"},
    "models": {"numpy_vae.models", "numpy_vae.conv_vae", "numpy_vae.cvae", "numpy_vae.vqvae",
               "numpy_vae.factory"},
    "training": {"numpy_vae.train", "numpy_vae.dataset", "numpy_vae.data", "numpy_vae.idx",
                 "numpy_vae.runs", "numpy_vae.checkpoint", "numpy_vae.checkpoint_format",
                 "numpy_vae.evaluate", "numpy_vae.plots", "numpy_vae._memory", "numpy_vae.recipes",
                 "numpy_vae.threads", "numpy_vae.exercises"},
    "CLI": {"numpy_vae.cli", "numpy_vae.__main__", "numpy_vae"},
}
RANK = {module: rank for rank, members in enumerate(LAYERS.values()) for module in members}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path) -> dict:
    """Module name -> its source file, for every .py file under ``root``."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def imported_modules(path: Path, name: str, modules: dict) -> set:
    """The package's modules that ``path`` imports, anywhere in the file.

    ``from numpy_vae import ops`` imports the module numpy_vae.ops;
    ``from numpy_vae import VAE`` imports the package numpy_vae itself.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # "import numpy_vae.backends.base" names the module itself
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path) -> dict:
    modules = package_modules(root)
    return {name: imported_modules(path, name, modules) for name, path in modules.items()}


def find_cycle(graph: dict):
    """One cycle of ``graph`` as a list [a, b, ..., a], or None if it is acyclic."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


# --- the checker on graphs whose answer is known ------------------------------

def test_find_cycle_finds_a_long_cycle_and_passes_a_diamond():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"b"}}) == ["b", "c", "d", "b"]
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None


def test_imports_inside_functions_and_relative_imports_are_edges(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from pkg.sub import high\n    return high\n")
    (pkg / "sub" / "high.py").write_text("from .. import low\n")
    graph = import_graph(pkg)
    assert graph["pkg.low"] == {"pkg.sub.high"} and graph["pkg.sub.high"] == {"pkg.low"}
    assert find_cycle(graph) == ["pkg.low", "pkg.sub.high", "pkg.low"]


# --- the package --------------------------------------------------------------

def test_the_package_has_no_import_cycle_at_any_depth():
    cycle = find_cycle(import_graph(PACKAGE_DIR))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_belongs_to_a_layer():
    unplaced = sorted(set(import_graph(PACKAGE_DIR)) - set(RANK))
    assert not unplaced, (f"modules in no layer of tests/test_structure.py: {', '.join(unplaced)}; "
                          f"add each to the layer of what it is")


def test_imports_run_one_way_cli_training_models_layers_backend_kernels():
    names = list(LAYERS)
    upward = [f"{module} ({names[RANK[module]]}) imports {target} ({names[RANK[target]]})"
              for module, targets in sorted(import_graph(PACKAGE_DIR).items()) if module in RANK
              for target in sorted(targets) if target in RANK and RANK[target] > RANK[module]]
    assert not upward, "a lower module imports a higher one:\n" + "\n".join(upward)


@pytest.mark.parametrize("name", sorted(package_modules(PACKAGE_DIR)))
def test_every_module_says_its_job_in_its_first_docstring_line(name):
    path = package_modules(PACKAGE_DIR)[name]
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.splitlines()[0].strip(), f"{path} has no docstring naming its job"
