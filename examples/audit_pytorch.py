"""Audit models trained in another framework: 16 small PyTorch CNNs on scikit-learn's digits, on the CPU.

    pip install torch --index-url https://download.pytorch.org/whl/cpu   # CPU-only PyTorch, no CUDA wheels
    pip install -e .
    python examples/audit_pytorch.py [--models 16] [--epochs 30] [--out runs/audit_pytorch]

(A plain `pip install torch` on Linux downloads several GB of CUDA libraries whether or not there is a
GPU; the CPU index's wheel has no CUDA dependencies and is all this example needs, as it trains on the
CPU. Where PyTorch is already installed, with or without CUDA, skip the first line.)

lira_jax chooses who trains on what (`make_keep`: every example in exactly half of the models), PyTorch
trains, and `lira_jax.audit_logits` scores every attack with each model as the target and the others as
its shadows. Prints the attack table and the most exposed examples; writes report.html, roc.png,
metrics.json and examples.csv into --out. About a minute and a half on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import lira_jax


def small_cnn() -> nn.Module:
    """Two convolutions and a linear layer for 8x8 one-channel digits (about 12k parameters)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def train(images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int) -> nn.Module:
    """One model on the given examples: Adam, batches of 64, no augmentation (so that it memorises)."""
    torch.manual_seed(seed)
    model = small_cnn()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(labels)).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimiser.step()
    return model.eval()


@torch.no_grad()
def query(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits [N, V, C] under V = 2 views: the image, and the image shifted one pixel to the right."""
    shifted = torch.roll(images, shifts=1, dims=3)
    return torch.stack([model(images), model(shifted)], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=16, help="models to train (even; default 16)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per model (default 30)")
    parser.add_argument("--out", type=Path, default=Path("runs/audit_pytorch"), help="where the report goes")
    parser.add_argument("--top", type=int, default=10, help="most exposed examples to print (default 10)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny models: one thread is faster than two that contend

    digits = load_digits()
    pixels = (digits.images / 16.0).astype(np.float32)  # [N, 8, 8] in [0, 1]
    images = torch.from_numpy(pixels)[:, None]  # [N, 1, 8, 8]
    labels = torch.from_numpy(digits.target)
    keep = lira_jax.make_keep(args.models, len(labels), seed=0)  # bool [M, N]

    logits, accuracy = [], {"train": [], "test": []}
    started = time.perf_counter()
    for index, members in enumerate(keep):
        model = train(images[members], labels[members], args.epochs, seed=index)
        logits.append(query(model, images))
        right = (logits[-1][:, 0].argmax(dim=1) == labels).numpy()
        accuracy["train"].append(float(right[members].mean()))
        accuracy["test"].append(float(right[~members].mean()))
        print(
            f"model {index + 1}/{args.models}: train accuracy {accuracy['train'][-1]:.3f}, "
            f"test {accuracy['test'][-1]:.3f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )

    # [M, N, V, C] as a CPU tensor: audit_logits reads it without a copy
    audit = lira_jax.audit_logits(torch.stack(logits), keep, labels)
    print(audit.table())
    print("\n" + "\n".join(audit.top_lines(args.top)))

    args.out.mkdir(parents=True, exist_ok=True)
    audit.plot_roc(args.out / "roc.png")
    audit.to_html(args.out / "report.html", images=pixels, accuracy=accuracy, title="PyTorch CNNs on digits")
    audit.write_metrics_json(args.out / "metrics.json")
    audit.write_examples_csv(args.out / "examples.csv")
    print(f"wrote {args.out}/report.html, roc.png, metrics.json and examples.csv")


if __name__ == "__main__":
    main()
