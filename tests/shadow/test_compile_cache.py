"""compile_cache.py: JAX's persistent compilation cache, on by default, where the config, the environment
or JAX's own variable says, or off."""

import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from conftest import tiny_settings

from lira_jax.shadow import compile_cache


@pytest.fixture
def restore_cache():
    """After the test and its monkeypatch: the suite's own cache again (conftest.py), uncapped."""
    yield
    jax.config.update("jax_compilation_cache_max_size", -1)
    compile_cache.enable("")


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    for name in (compile_cache.ENVIRONMENT, "JAX_COMPILATION_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    return tmp_path


def test_the_folder_comes_from_the_config_then_the_environment_then_the_users_cache(clean_environment, monkeypatch):
    home = clean_environment / "home-cache"
    assert compile_cache.cache_folder("") == home / "lira_jax" / "jax"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/jax/own")
    assert compile_cache.cache_folder("") == Path("/jax/own")
    monkeypatch.setenv(compile_cache.ENVIRONMENT, "/ours")
    assert compile_cache.cache_folder("") == Path("/ours")
    assert compile_cache.cache_folder("/from/config") == Path("/from/config")
    assert compile_cache.cache_folder("off") is None
    monkeypatch.setenv(compile_cache.ENVIRONMENT, "off")
    assert compile_cache.cache_folder("") is None


def test_enable_keeps_compiled_programs_in_the_folder_it_names(restore_cache, tmp_path):
    assert compile_cache.enable(str(tmp_path / "cache")) == tmp_path / "cache"
    jax.jit(lambda x: jnp.tanh(x) @ x.T * 3.0)(jnp.ones((64, 64))).block_until_ready()
    assert list((tmp_path / "cache").glob("*-cache"))
    assert compile_cache.enable(str(tmp_path / "file" / "below")) is not None  # created
    (tmp_path / "plain").write_text("")
    assert compile_cache.enable(str(tmp_path / "plain" / "below")) is None  # cannot be created: off
    assert not jax.config.jax_enable_compilation_cache


@pytest.mark.slow
def test_a_second_run_of_the_same_recipe_compiles_nothing_new(tmp_path):
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "lira_jax.train", "--quiet", "--no-attack", *tiny_settings("train.epochs=1")]
    command += ["--set", f"train.compilation_cache={cache}"]
    subprocess.run([*command, "--out", str(tmp_path / "first")], check=True, capture_output=True)
    entries = sorted(path.name for path in cache.glob("*-cache"))
    assert entries
    subprocess.run([*command, "--out", str(tmp_path / "second")], check=True, capture_output=True)
    assert sorted(path.name for path in cache.glob("*-cache")) == entries


def test_only_the_default_folder_is_capped(restore_cache, clean_environment):
    compile_cache.enable("")
    assert jax.config.jax_compilation_cache_max_size == compile_cache.MAX_BYTES
    jax.config.update("jax_compilation_cache_max_size", -1)
    compile_cache.enable(str(clean_environment / "named"))
    assert jax.config.jax_compilation_cache_max_size == -1


def _compile_once(x):
    """A fresh function object each call (JAX keeps compiled programs per function in memory), the same
    program each time: its compilation reads the persistent cache."""

    def program(y):
        return jnp.sin(y) @ y.T + 1.0

    return jax.jit(program)(x).block_until_ready()


DAMAGE = {  # how a full disk or a kill leaves an entry: JAX writes entries in place
    "truncated to half": lambda content: content[: len(content) // 2],
    "cut to 3 bytes": lambda content: content[:3],
    "empty": lambda content: b"",
    "garbled in the middle": lambda content: content[:40] + bytes(len(content) - 80) + content[-40:],
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_entry_is_removed_and_written_anew_so_it_warns_once(restore_cache, tmp_path, capsys, damage):
    folder = tmp_path / "cache"
    compile_cache.enable(str(folder))
    x = jnp.ones((8, 8))
    _compile_once(x)
    (entry,) = folder.glob("jit_program-*-cache")
    damaged = DAMAGE[damage](entry.read_bytes())
    entry.write_bytes(damaged)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # JAX's "Error reading persistent compilation cache entry" would fail
        _compile_once(x)
        assert "note: removed a damaged compiled program" in capsys.readouterr().err
        rewritten = entry.read_bytes()
        assert rewritten != damaged and len(rewritten) > 3  # compiled again, written whole
        _compile_once(x)  # the next run reads it: no note, no warning, nothing written
    assert capsys.readouterr().err == "" and entry.read_bytes() == rewritten


@pytest.mark.parametrize("inside", ["cache", "deeper/cache", "."])
def test_a_cache_inside_the_run_folder_is_refused_before_anything_is_created(tmp_path, capsys, inside):
    from hostile import refused

    from lira_jax import train

    out = tmp_path / "run"
    argv = ["--out", out, *tiny_settings(f"train.compilation_cache={out / inside}"), "--quiet"]
    refused(tmp_path, train.main, argv, r"the compilation cache .* lies in the run folder", capsys)
    assert not out.exists()


def test_a_cache_named_by_the_environment_inside_the_run_folder_is_refused(tmp_path, capsys, monkeypatch):
    from hostile import refused

    from lira_jax import train

    monkeypatch.setenv(compile_cache.ENVIRONMENT, str(tmp_path / "run" / "xla"))
    argv = ["--out", tmp_path / "run", *tiny_settings(), "--quiet"]
    refused(tmp_path, train.main, argv, f"lies in the run folder .*{compile_cache.ENVIRONMENT}", capsys)
    assert not (tmp_path / "run").exists()
