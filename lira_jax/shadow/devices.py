"""The local devices a run trains on and what they can hold: one CPU device per core, free memory, caches.

Why one CPU device per core: by default JAX makes one device of the whole CPU and XLA splits each op of
the step over the cores. A shadow model's ops are too small for that to pay: 8 digits CNNs per step ran
at about 17,000 model-examples/s on one device of 2 cores and 16,000 on one core alone. The models need
no communication, so the engine shards the model axis over one device per core instead, each running
its own models on its own core: about 30,000 on the same 2 cores (benchmarks/RESULTS.md).
"""

import os
from collections.abc import Iterable
from pathlib import Path

import jax

CPU_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def usable_core_ids() -> set[int] | None:
    """The CPU cores this process may run on (its affinity mask), or None where the OS does not say."""
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None


def usable_cores() -> int:
    """The number of CPU cores this process may run on."""
    cores = usable_core_ids()
    return len(cores) if cores is not None else os.cpu_count() or 1


def use_every_cpu_core() -> int | None:
    """Gives JAX's CPU backend one device per usable core (`jax_num_cpu_devices`); returns that count.

    Must run before JAX's backends start: returns None and changes nothing where they already have (a
    caller ran JAX first) or where the user chose a count (JAX_NUM_CPU_DEVICES, or XLA_FLAGS with
    --xla_force_host_platform_device_count). Harmless on GPU and TPU hosts, where the CPU devices go unused.
    """
    if CPU_DEVICE_COUNT_FLAG in os.environ.get("XLA_FLAGS", "") or jax.config.jax_num_cpu_devices >= 0:
        return None
    cores = usable_cores()
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # the backends have started
        return None
    return cores


def free_bytes(device: jax.Device) -> int:
    """Memory the device can give a chunk: the accelerator's limit, or on CPU the host's available RAM
    (which all CPU devices share)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) * 1024


def _size_bytes(text: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def cpu_cache_bytes(cores: Iterable[int] | None = None, sysfs: Path = Path("/sys/devices/system/cpu")) -> int | None:
    """Total size of the last-level caches serving `cores` (default: those this process may run on), each
    cache counted once however many of the cores share it; from Linux sysfs. None where it cannot be read."""
    if cores is None:
        cores = usable_core_ids() or ()
    caches: dict[tuple[int, str], int] = {}  # (level, cores sharing it) -> bytes
    for core in cores:
        for entry in (sysfs / f"cpu{core}" / "cache").glob("index*"):
            try:
                level = int((entry / "level").read_text())
                shared = (entry / "shared_cpu_list").read_text().strip()
                caches[level, shared] = _size_bytes((entry / "size").read_text().strip())
            except (OSError, ValueError):
                continue
    if not caches:
        return None
    last = max(level for level, _ in caches)
    return sum(size for (level, _), size in caches.items() if level == last)
