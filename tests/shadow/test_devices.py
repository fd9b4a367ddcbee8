"""One CPU device per core for the command line, unless the user chose a count; caches counted once."""

import json
import os
import subprocess
import sys

from conftest import tiny_settings

from lira_jax.shadow import devices

DEVICE_COUNT = (
    "import json, jax; from lira_jax.shadow.devices import use_every_cpu_core;"
    " {before} made = use_every_cpu_core(); print(json.dumps([made, jax.device_count()]))"
)


def device_count_in_fresh_process(before: str = "", **env: str) -> list:
    """[what use_every_cpu_core returned, jax.device_count()] in a new Python process."""
    environment = {key: value for key, value in os.environ.items() if key not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    environment.update(env, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", DEVICE_COUNT.format(before=before)], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_one_cpu_device_per_usable_core():
    cores = devices.usable_cores()
    assert device_count_in_fresh_process() == [cores, cores]


def test_a_count_the_user_chose_is_kept():
    assert device_count_in_fresh_process(XLA_FLAGS="--xla_force_host_platform_device_count=3") == [None, 3]
    assert device_count_in_fresh_process(JAX_NUM_CPU_DEVICES="5") == [None, 5]


def test_nothing_changes_once_jax_has_started():
    assert device_count_in_fresh_process(before="jax.numpy.zeros(1);") == [None, 1]


def write_cache(sysfs, core: int, index: int, level: int, size: str, shared: str) -> None:
    entry = sysfs / f"cpu{core}" / "cache" / f"index{index}"
    entry.mkdir(parents=True)
    (entry / "level").write_text(f"{level}\n")
    (entry / "size").write_text(f"{size}\n")
    (entry / "shared_cpu_list").write_text(f"{shared}\n")


def test_cpu_cache_bytes_counts_each_shared_cache_once(tmp_path):
    # Four cores, private 512K L2s, two 16M L3s each shared by two cores.
    for core in range(4):
        write_cache(tmp_path, core, 2, 2, "512K", str(core))
        write_cache(tmp_path, core, 3, 3, "16384K", "0-1" if core < 2 else "2-3")
    assert devices.cpu_cache_bytes(range(4), tmp_path) == 2 * 16 * 2**20
    assert devices.cpu_cache_bytes([0, 1], tmp_path) == 16 * 2**20
    assert devices.cpu_cache_bytes([0], tmp_path / "missing") is None


def test_cpu_cache_bytes_of_this_machine_is_a_size_or_none():
    size = devices.cpu_cache_bytes()
    assert size is None or size >= 2**16


def test_the_command_line_trains_on_one_device_per_core(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    command = [sys.executable, "-m", "lira_jax.train", "--out", str(tmp_path / "run"), "--quiet", "--no-attack"]
    command += tiny_settings("train.epochs=1", "train.num_models=2")
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    records = json.loads((tmp_path / "run/models.json").read_text())["models"]
    assert {record["devices"] for record in records} == {min(2, devices.usable_cores())}
