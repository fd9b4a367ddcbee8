"""The audit half's shape: importing it (and the run folder reader, and the attack command line) never
imports JAX; at most 8 modules sit directly in lira_jax/audit/; its rooms import downward only, so no
import cycle."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

from conftest import HANG_GUARD_S

import lira_jax.audit

AUDIT_DIR = Path(lira_jax.audit.__file__).parent
AUDIT_MODULES = sorted(info.name for info in pkgutil.walk_packages(lira_jax.audit.__path__, "lira_jax.audit."))
MAX_TOP_MODULES = 8
# Each room (a sub-package, or a module directly in lira_jax/audit/) imports only rooms of a lower layer, and
# itself: the conductor and the API on top, then the registry, report, attacks, inputs, metrics, streaming.
LAYERS = {
    "streaming": 0,
    "precision": 0,
    "metrics": 1,
    "inputs": 2,
    "attacks": 3,
    "report": 4,
    "registry": 5,
    "evaluate": 6,
    "api": 7,
}

PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("jax", "jaxlib", "flax", "optax"))
print(",".join(loaded))
"""


def test_audit_half_imports_no_jax():
    assert {"lira_jax.audit.registry", "lira_jax.audit.evaluate", "lira_jax.audit.attacks.lira.lira"} <= set(
        AUDIT_MODULES
    )
    modules = ["lira_jax.audit", *AUDIT_MODULES, "lira_jax.store", "lira_jax.attack"]
    done = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"JAX-side modules imported: {done.stdout.strip()}"


def test_train_shadows_imports_no_jax_until_it_is_called():
    """`from lira_jax import train_shadows` (and run_recipe.py, which the audit half may read) stays light."""
    probe = PROBE.replace(
        "import importlib, sys", "import importlib, sys, lira_jax\nassert callable(lira_jax.train_shadows)"
    )
    modules = ["lira_jax", "lira_jax.train_api", "lira_jax.run_recipe"]
    done = subprocess.run([sys.executable, "-c", probe, *modules], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"JAX-side modules imported: {done.stdout.strip()}"


def test_few_modules_directly_in_audit():
    top = sorted(path.name for path in AUDIT_DIR.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} modules directly in lira_jax/audit/ (put them in a room): {top}"


def audit_imports(path: Path) -> set[str]:
    """The lira_jax.audit modules and packages that the file at `path` imports (anywhere in it)."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {name for name in imported if name.startswith("lira_jax.audit.")}


def room(module: str) -> str:
    return module.split(".")[2]


def test_rooms_import_downward_only():
    wrong = []
    for path in AUDIT_DIR.rglob("*.py"):
        module = ".".join(path.relative_to(AUDIT_DIR.parent.parent).with_suffix("").parts)
        if module == "lira_jax.audit.__init__":
            continue
        for name in audit_imports(path):
            if room(name) not in LAYERS:
                continue  # `from lira_jax.audit.report import plots` also names lira_jax.audit.report.plots
            if room(name) != room(module) and LAYERS[room(name)] >= LAYERS[room(module)]:
                wrong.append(f"{module} imports {name}")
    assert set(LAYERS) >= {room(module) for module in AUDIT_MODULES}, "a new room needs its layer in LAYERS"
    assert not wrong, wrong


def test_no_import_cycle_inside_a_room():
    modules = {
        ".".join(path.relative_to(AUDIT_DIR.parent.parent).with_suffix("").parts): path
        for path in AUDIT_DIR.rglob("*.py")
    }
    modules = {name.removesuffix(".__init__"): path for name, path in modules.items()}
    graph = {name: audit_imports(path) & set(modules) - {name} for name, path in modules.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            assert state.get(other) != "open", f"import cycle: {' -> '.join([*trail, name, other])}"
            if other not in state:
                visit(other, [*trail, name])
        state[name] = "closed"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
