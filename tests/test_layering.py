"""The package's import structure: NumPy executors without torch, no import cycles, and lower
layers never importing higher ones (deferred imports inside functions included)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bmcnn_hw"

TORCH_FREE = ("bmcnn_hw.golden.integer", "bmcnn_hw.golden.chip", "bmcnn_hw.golden.crossbar",
              "bmcnn_hw.golden.tile_reader", "bmcnn_hw.golden.readout", "bmcnn_hw.golden.tile_nonlinear",
              "bmcnn_hw.spice.netlist", "bmcnn_hw.spice.run", "bmcnn_hw.spice.solver",
              "bmcnn_hw.spice.engines",
              "bmcnn_hw.spice.report", "bmcnn_hw.spice.sky130", "bmcnn_hw.tune", "bmcnn_hw.sweep",
              "bmcnn_hw.evaluate", "bmcnn_hw.cosim.cosim", "bmcnn_hw.rtl.emit", "bmcnn_hw.checks", "bmcnn_hw.cli",
              "bmcnn_hw.programming", "bmcnn_hw.golden.aging", "bmcnn_hw.lifetime")
"""Modules a user without torch (or a sweep worker) imports: executors, netlists, tuning, RTL."""

LAYERS = (
    ("errors", "parallel", "io_utils", "progress", "records", "plotting", "tables"),
    ("config", "data", "arch"),
    ("presets", "artefact"),
    ("golden",),
    ("spice", "train", "compile", "programming"),
    ("rtl", "tune"),
    ("cosim",),
    ("checks", "rtl_build"),
    ("build", "evaluate", "sweep", "lifetime", "flows", "demo", "ppa", "importer", "onnx_graph", "onnx_import"),
    ("explore",),
    ("options", "commands", "cli", "__init__", "__main__"),
)
"""Top-level parts of the package, lowest first: a part may import its own layer and below."""

ALLOWED_UPWARD = {("golden.chip", "spice.sky130"), ("golden.chip", "spice.ngspice")}
"""The one upward edge: a 1T1R Chip's access-transistor table is characterised by ngspice on
first use (``spice.sky130`` needs only ``spice.ngspice`` and ``golden.cells``, so no cycle)."""


def _module_name(path: Path) -> str:
    parts = list(path.with_suffix("").relative_to(PACKAGE.parent).parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """bmcnn_hw module -> the bmcnn_hw modules it imports anywhere in its body."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                targets = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if _part(module) in names)


def test_executors_import_without_torch():
    blocker = ("import importlib, sys\n"
               "class Block:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'torch' or name.startswith('torch.'):\n"
               "            raise ImportError('torch is blocked')\n"
               "sys.meta_path.insert(0, Block())\n"
               f"for name in {TORCH_FREE!r}:\n"
               "    importlib.import_module(name)\n"
               "assert 'torch' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_part_of_the_package_has_a_layer():
    assert {_part(m) for m in _imports()} <= {name for names in LAYERS for name in names}


def test_no_module_imports_a_higher_layer():
    upward = sorted((m, t) for m, targets in _imports().items() for t in targets
                    if _layer(t) > _layer(m) and (m.removeprefix("bmcnn_hw."), t.removeprefix("bmcnn_hw."))
                    not in ALLOWED_UPWARD)
    assert not upward


def test_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            assert (cycle := visit(start, [])) is None, " -> ".join(cycle)
