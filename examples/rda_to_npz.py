"""Converts a data frame saved by R (.rda / .RData) into the .npz table that `data.source = "npz:PATH"` reads.

Real tables offline: Debian's r-cran-mlbench ships UCI's LetterRecognition (20,000 x 16, 26 classes),
Shuttle, Satellite, DNA and more as .rda files. No R is needed, only PyPI's rdata (pip install rdata):

    apt-get download r-cran-mlbench && dpkg -x r-cran-mlbench_*.deb mlbench
    python examples/rda_to_npz.py mlbench/usr/lib/R/site-library/mlbench/data/LetterRecognition.rda data/letter.npz
    python -m lira_jax.train --config configs/letter_mlp.toml

The label is the data frame's one categorical column (a factor: lettr, Class, classes), or the one named by
--label where there are several (DNA: --label Class). Every other column becomes a float feature: numbers as
they are, factors as their level's index (DNA's 0/1 factors as 0 and 1). The .npz holds x float32[N, D],
y int64[N] and, for reference only, the feature and class names (features, classes).
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np


def read_frame(path: Path, name: str | None):
    """The data frame named `name` in the .rda at `path` (the only one if None)."""
    try:
        import rdata
    except ImportError:
        sys.exit("error: reading .rda files needs rdata: pip install rdata")
    with warnings.catch_warnings():  # mlbench's files carry no encoding; rdata warns once per string
        warnings.simplefilter("ignore")
        try:
            objects = rdata.read_rda(path)
        except (OSError, ValueError, NotImplementedError) as error:
            sys.exit(f"error: cannot read {path} as an .rda file: {error}")
    if name is None and len(objects) != 1:
        sys.exit(f"error: {path} holds {', '.join(objects)}: name one with --name")
    frame = objects[name] if name else next(iter(objects.values()))
    if not hasattr(frame, "columns"):
        sys.exit(f"error: {name or next(iter(objects))} in {path} is not a data frame")
    return frame


def to_arrays(frame, label: str | None) -> dict[str, np.ndarray]:
    """x float32[N, D], y int64[N], features str[D], classes str[C] from a pandas data frame."""
    categorical = [column for column in frame.columns if frame[column].dtype.name == "category"]
    if label is None:
        if len(categorical) != 1:
            sys.exit(f"error: {len(categorical)} categorical columns: name the label with --label")
        label = categorical[0]
    if label not in frame.columns or frame[label].dtype.name != "category":
        sys.exit(f"error: --label {label!r} is not a categorical column of the data frame")
    features = [column for column in frame.columns if column != label]
    columns = [
        frame[column].cat.codes.to_numpy(np.float32) if column in categorical else frame[column].to_numpy(np.float32)
        for column in features
    ]
    x = np.stack(columns, axis=1)
    y = frame[label].cat.codes.to_numpy(np.int64)
    if (y < 0).any() or not np.isfinite(x).all() or any((frame[c].cat.codes < 0).any() for c in categorical):
        sys.exit("error: the data frame has missing values (NA): drop or fill them in R first")
    classes = np.asarray([str(level) for level in frame[label].cat.categories])
    return {"x": x, "y": y, "features": np.asarray([str(name) for name in features]), "classes": classes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rda", type=Path, help="the .rda or .RData file")
    parser.add_argument("out", type=Path, help="the .npz to write (refused if it exists)")
    parser.add_argument("--name", help="which object of the file (default: its only one)")
    parser.add_argument("--label", help="the label column (default: the one categorical column)")
    args = parser.parse_args()
    if args.out.exists():
        sys.exit(f"error: {args.out} exists: it is not replaced")
    arrays = to_arrays(read_frame(args.rda, args.name), args.label)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "xb") as file:
        np.savez(file, **arrays)
    x, classes = arrays["x"], arrays["classes"]
    print(f"{args.out}: x float32{list(x.shape)}, y in {len(classes)} classes ({', '.join(classes[:5])}, ...)")


if __name__ == "__main__":
    main()
