"""Importing the audit half (and the run folder reader, and the attack command line) never imports JAX."""

import pkgutil
import subprocess
import sys

from conftest import HANG_GUARD_S

import lira_jax.audit

AUDIT_MODULES = sorted(f"lira_jax.audit.{info.name}" for info in pkgutil.iter_modules(lira_jax.audit.__path__))

PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("jax", "jaxlib", "flax", "optax"))
print(",".join(loaded))
"""


def test_audit_half_imports_no_jax():
    assert "lira_jax.audit.registry" in AUDIT_MODULES and "lira_jax.audit.evaluate" in AUDIT_MODULES
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
