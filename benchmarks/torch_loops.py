"""The baseline the engine is measured against: PyTorch models trained one after another, the way
existing tools train shadow models. Used by train_throughput.py (the digits CNN on CPU) and device_check.py
(ResNet-18 with the CIFAR stem on a GPU, channels_last, bf16 autocast). Imports torch only when called.
"""

import math
import time

import numpy as np


def digits_cnn(channels: int, height: int, width: int, base: int, num_classes: int):
    """lira_jax's CNN (models.CNN) in PyTorch: three 3x3 conv + BN + ReLU layers, two max-pools, two dense."""
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


def train_one(make_model, x, y, orders, *, steps: int, batch: int, schedule, settings: dict) -> float:
    """Trains a fresh make_model() on x[orders[e]] batch by batch for each epoch e; returns the last loss.

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
    return loss.item()  # waits for the device


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
) -> dict:
    """Trains one model per row of keep bool[M, N] on its members, model after model: SGD with Nesterov
    momentum 0.9 on a warm-up + cosine schedule (the engine's optimizer). images float32[N, H, W, C] are
    fed as NCHW (channels_last memory format on a GPU, with bf16 autocast if `bfloat16`). One model's
    first steps are run first as a warm-up and not timed. `max_steps` caps the steps of each epoch.

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
    started = time.perf_counter()
    for index in range(len(keep)):
        torch.manual_seed(index)
        loss = train_one(
            make_model, x, y, orders(index, epochs), steps=steps, batch=batch, schedule=schedule, settings=settings
        )
    seconds = time.perf_counter() - started
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "models": len(keep),
        "epochs": epochs,
        "steps_per_epoch": steps,
        "seconds": round(seconds, 2),
        "model_examples_per_s": round(len(keep) * epochs * steps * batch / seconds),
        "final_loss": round(loss, 4),
    }
