"""The baseline the engine is measured against: PyTorch models trained one after another, the way
existing tools train shadow models. Used by train_throughput.py (the CNN on CPU, digits or 28x28
Fashion-MNIST) and device_check.py (ResNet-18 with the CIFAR stem on a GPU, channels_last, bf16 autocast).
Imports torch only when called.

Run as a script it is the whole PyTorch counterpart of `python -m lira_jax.train --no-attack` on
Fashion-MNIST, for train_throughput.py --whole: read the IDX files, train the models one after another,
then every model's logits on every example under the identity (and mirror) view, saved as .npy:

    python benchmarks/torch_loops.py --idx /usr/share/datasets/fashion-mnist --limit 5000 --width 16 \
        --models 8 --epochs 3 --views 2 --out /tmp/logits.npy
"""

import argparse
import gzip
import math
import time
from pathlib import Path

import numpy as np


def cnn(channels: int, height: int, width: int, base: int, num_classes: int):
    """lira_jax's CNN (models.CNN, `base` = its width) in PyTorch: three 3x3 conv + BN + ReLU layers, two
    max-pools, two dense."""
    from torch import nn

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    flat = 4 * base * (height // 4) * (width // 4)
    return nn.Sequential(
        *block(channels, base),
        *block(base, 2 * base), nn.MaxPool2d(2),
        *block(2 * base, 4 * base), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 4 * base), nn.ReLU(), nn.Linear(4 * base, num_classes),
    )  # fmt: skip


def resnet18(num_classes: int, width: int = 64):
    """lira_jax's ResNet18 (CIFAR stem: one 3x3 conv, no max-pool) in PyTorch, without torchvision."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            nn.init.zeros_(self.bn2.weight)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(nn.functional.relu(self.bn1(self.conv1(x)))))
            return nn.functional.relu(self.shortcut(x) + y)

    layers, cin = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()], width
    for stage in range(4):
        for block in range(2):
            cout = width * 2**stage
            layers.append(Block(cin, cout, 2 if stage > 0 and block == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


def warmup_cosine(warmup: int, total: int):
    """optax.warmup_cosine_decay_schedule as a multiplier of the peak rate (for torch's LambdaLR)."""

    def multiplier(step: int) -> float:
        if step < warmup:
            return step / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return multiplier


def train_one(make_model, x, y, orders, *, steps: int, batch: int, schedule, settings: dict) -> tuple:
    """Trains a fresh make_model() on x[orders[e]] batch by batch for each epoch e; returns (the model, its
    last loss).

    x: float[N, C, H, W] and y: int64[N] on the device; orders: one index tensor per epoch (members,
    shuffled and wrapped to steps * batch); settings: device, memory_format, bfloat16, learning_rate,
    weight_decay."""
    import torch

    device = settings["device"]
    net = make_model().to(device=device, memory_format=settings["memory_format"])
    net.train()
    optimizer = torch.optim.SGD(
        net.parameters(), lr=settings["learning_rate"], momentum=0.9, nesterov=True,
        weight_decay=settings["weight_decay"],
    )  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    loss = None
    for order in orders:
        for step in range(steps):
            indices = order[step * batch : (step + 1) * batch]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=settings["bfloat16"]):
                loss = torch.nn.functional.cross_entropy(net(x[indices]), y[indices])
            loss.backward()
            optimizer.step()
            scheduler.step()
    return net, loss.item()  # waits for the device


def query(net, x, views: int, batch: int = 512) -> np.ndarray:
    """float32[N, views, K]: the model's logits (eval mode) on every example, identity then mirror view."""
    import torch

    net.eval()
    with torch.no_grad():
        per_view = [
            torch.cat([net(x[start : start + batch].flip(-1) if view else x[start : start + batch])
                       for start in range(0, len(x), batch)])
            for view in range(views)
        ]  # fmt: skip
    return torch.stack(per_view, dim=1).float().cpu().numpy()


def train_models(
    make_model,
    images: np.ndarray,
    labels: np.ndarray,
    keep: np.ndarray,
    *,
    epochs: int,
    batch: int,
    learning_rate: float = 0.1,
    weight_decay: float = 5e-3,
    warmup_epochs: float = 1.0,
    device: str = "cpu",
    bfloat16: bool = False,
    max_steps: int | None = None,
    query_views: int = 0,
) -> dict:
    """Trains one model per row of keep bool[M, N] on its members, model after model: SGD with Nesterov
    momentum 0.9 on a warm-up + cosine schedule (the engine's optimizer). images float32[N, H, W, C] are
    fed as NCHW (channels_last memory format on a GPU, with bf16 autocast if `bfloat16`). One model's
    first steps are run first as a warm-up and not timed. `max_steps` caps the steps of each epoch.
    query_views = 1 or 2: after training, each model's logits on every example under the identity (and
    the mirror) view, float32[M, N, V, K], timed apart ("query_seconds") and returned as "logits".

    Returns {"models", "epochs", "steps_per_epoch", "seconds", "model_examples_per_s", "final_loss"}.
    """
    import torch

    steps = max(1, math.ceil(int(keep.sum(axis=1).max()) / batch))
    steps = min(steps, max_steps or steps)
    memory_format = torch.channels_last if device != "cpu" else torch.contiguous_format
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)
    x = x.contiguous(memory_format=memory_format)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    warmup = round(warmup_epochs * steps)
    schedule = warmup_cosine(warmup, max(epochs * steps, warmup + 1))
    settings = dict(
        device=device, memory_format=memory_format, bfloat16=bfloat16, learning_rate=learning_rate,
        weight_decay=weight_decay,
    )  # fmt: skip
    rng = np.random.default_rng(0)

    def orders(index: int, count: int) -> list:
        members = np.flatnonzero(keep[index])
        return [torch.from_numpy(np.resize(rng.permutation(members), steps * batch)).to(device) for _ in range(count)]

    torch.manual_seed(0)
    train_one(make_model, x, y, orders(0, 1), steps=min(3, steps), batch=batch, schedule=schedule, settings=settings)
    seconds = query_seconds = 0.0
    logits = []
    for index in range(len(keep)):
        torch.manual_seed(index)
        started = time.perf_counter()
        net, loss = train_one(
            make_model, x, y, orders(index, epochs), steps=steps, batch=batch, schedule=schedule, settings=settings
        )
        seconds += time.perf_counter() - started
        if query_views:
            started = time.perf_counter()
            logits.append(query(net, x, query_views))
            query_seconds += time.perf_counter() - started
    extra = {"query_seconds": round(query_seconds, 2), "logits": np.stack(logits)} if query_views else {}
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "models": len(keep),
        "epochs": epochs,
        "steps_per_epoch": steps,
        "seconds": round(seconds, 2),
        "model_examples_per_s": round(len(keep) * epochs * steps * batch / seconds),
        "final_loss": round(loss, 4),
        **extra,
    }


def read_idx(path: Path) -> np.ndarray:
    """One gzipped IDX file (MNIST format) -> array, as a plain script would read it."""
    content = gzip.decompress(path.read_bytes())
    dims = content[3]
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", dims, offset=4))
    return np.frombuffer(content, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main() -> int:
    """The whole PyTorch script (see the module docstring); prints its phases' seconds as JSON."""
    import json

    import torch

    started = time.perf_counter()
    parser = argparse.ArgumentParser(description="train CNNs one after another on Fashion-MNIST, then query them")
    for name, kind in (("--idx", Path), ("--limit", int), ("--width", int), ("--models", int), ("--epochs", int),
                       ("--views", int), ("--out", Path)):  # fmt: skip
        parser.add_argument(name, type=kind, required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")  # fmt: skip
    train_images, train_labels, test_images, test_labels = (read_idx(args.idx / name) for name in names)
    images = np.concatenate([train_images, test_images])[: args.limit, :, :, None].astype(np.float32)
    labels = np.concatenate([train_labels, test_labels])[: args.limit].astype(np.int64)
    images = (images - images.mean()) / images.std()
    rng = np.random.default_rng(0)
    keep = (
        np.argsort(rng.random((args.models + args.models % 2, args.limit)), axis=0)[: args.models]
        < (args.models + args.models % 2) // 2
    )
    result = train_models(
        lambda: cnn(1, 28, 28, args.width, 10), images, labels, keep, epochs=args.epochs, batch=64,
        weight_decay=5e-4, query_views=args.views,
    )  # fmt: skip
    np.save(args.out, result.pop("logits"))
    result["whole_seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result))
    return 0


def concurrent_worker(folder: Path, index: int, arch: str, width: int, side: int, batch: int, steps: int) -> dict:
    """One of several PyTorch training processes sharing a device (device_check.py's "torch N" rows): a
    model trained on random data for a warm-up, then `ready-INDEX` written into `folder`; once `go` is
    there, `steps` timed steps. Returns their wall-clock window (start, end: time.time()) and rate."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    rng = np.random.default_rng(index)
    count = 8 * batch
    x = torch.from_numpy(rng.standard_normal((count, 3, side, side), dtype=np.float32)).to(device)
    memory_format = torch.channels_last if device != "cpu" else torch.contiguous_format
    x = x.contiguous(memory_format=memory_format)
    y = torch.from_numpy(rng.integers(0, 10, count)).to(device)
    settings = dict(device=device, memory_format=memory_format, bfloat16=device != "cpu", learning_rate=0.1,
                    weight_decay=5e-4)  # fmt: skip
    make_model = (lambda: resnet18(10, width)) if arch == "resnet18" else (lambda: cnn(3, side, side, width, 10))

    def run(count_steps: int) -> None:
        order = [torch.from_numpy(rng.integers(0, count, count_steps * batch)).to(device)]
        train_one(make_model, x, y, order, steps=count_steps, batch=batch, schedule=lambda _: 1.0, settings=settings)

    run(min(30, steps))  # cuDNN's algorithm search and the allocator's first growth, untimed
    (folder / f"ready-{index}").touch()
    while not (folder / "go").exists():
        time.sleep(0.005)
    start = time.time()
    run(steps)  # train_one waits for the device (loss.item())
    end = time.time()
    return {"start": start, "end": end, "steps": steps, "batch": batch, "device": torch.cuda.get_device_name()
            if device == "cuda" else "cpu", "torch": torch.__version__,
            "model_examples_per_s": round(steps * batch / (end - start))}  # fmt: skip


def concurrent_main() -> int:
    import json

    parser = argparse.ArgumentParser(description="one of several concurrent PyTorch training processes")
    parser.add_argument("--concurrent", type=Path, required=True, help="the folder shared with the others")
    parser.add_argument("--worker", type=int, required=True)
    for name, default in (("--arch", "resnet18"), ("--width", 64), ("--side", 32), ("--batch", 256), ("--steps", 150)):
        parser.add_argument(name, type=type(default), default=default)
    args = parser.parse_args()
    result = concurrent_worker(args.concurrent, args.worker, args.arch, args.width, args.side, args.batch, args.steps)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(concurrent_main() if "--concurrent" in sys.argv else main())
