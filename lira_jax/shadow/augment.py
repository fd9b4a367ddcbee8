"""On-device training augmentations and the deterministic query views used at inference.

Training: `parse_augmentations(["flip", "crop:4"], (H, W, C))` turns config strings into a tuple of small
frozen dataclasses; `augment_batch(key, images, targets, augmentations)` applies them in the order given.
Everything is a pure function of (key, arrays) with the augmentations as a static, hashable argument, so it
runs inside the jitted train step and vmaps over the leading model axis: each model passes its own key and
draws its own flips, crops, squares, sub-policies and mixing weights. Within a model every image gets its
own randomness. No Python loop runs over images; the only loops are over the (static) list of augmentations.

Inference: `parse_views(["mirror_shifts:4"], (H, W, C))` and `apply_views(images, views)` give V
deterministic copies of a batch; LiRA averages its test over them (V = 18 in the paper).

Spec strings (case-insensitive):
  flip            horizontal mirror of each image with probability 1/2
  crop:P          reflect-pad by P pixels, cut a random H x W window (random translation by up to +/-P)
  cutout:S        zero a random S x S square, centre uniform over the image (may overlap the border)
  autoaugment     the AutoAugment CIFAR-10 policy (lira_jax.shadow.autoaugment); needs the normalisation mean/std
  mixup:ALPHA     mix the batch with a random permutation of itself, weight lambda ~ Beta(ALPHA, ALPHA)
  identity | mirror | shift:DX,DY | mirror_shift:DX,DY | shifts:P | mirror_shifts:P    (query views)
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral

import jax
import jax.numpy as jnp

from lira_jax.errors import UserError
from lira_jax.shadow.autoaugment import autoaugment_cifar10

TRAIN_AUGMENTATIONS: tuple[str, ...] = ("flip", "crop", "cutout", "autoaugment", "mixup")
VIEWS: tuple[str, ...] = ("identity", "mirror", "shift", "mirror_shift", "shifts", "mirror_shifts")

TRAIN_USAGE = "flip, crop:PAD, cutout:SIZE, autoaugment, mixup:ALPHA"
VIEW_USAGE = "identity, mirror, shift:DX,DY, mirror_shift:DX,DY, shifts:P, mirror_shifts:P"


@dataclass(frozen=True)
class Augmentation:
    """One training augmentation; hashable, so a tuple of them is a static argument of a jitted function.

    name: one of TRAIN_AUGMENTATIONS. size: crop padding or cutout side in pixels. alpha: mixup's Beta
    parameter. mean, std: per-channel normalisation (pixels in [0, 1]) that autoaugment undoes and redoes.
    """

    name: str
    size: int = 0
    alpha: float = 0.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __str__(self) -> str:
        return {
            "crop": f"crop:{self.size}",
            "cutout": f"cutout:{self.size}",
            "mixup": f"mixup:{self.alpha:g}",
        }.get(self.name, self.name)


@dataclass(frozen=True)
class View:
    """One deterministic query view: optionally mirror, then move the content by (dx right, dy down) pixels,
    filling the uncovered border by reflection. View() is the identity."""

    mirror: bool = False
    dx: int = 0
    dy: int = 0

    def __str__(self) -> str:
        if self.dx == 0 and self.dy == 0:
            return "mirror" if self.mirror else "identity"
        return f"{'mirror_shift' if self.mirror else 'shift'}:{self.dx},{self.dy}"


# ---------------------------------------------------------------------------------------------- parsing


def refuse_image_only(kind: str, augment: Sequence[str], views: Sequence[str]) -> None:
    """One UserError if data of `kind` ("table" or "tokens": not images) is given training augmentations or
    query views other than the identity: every one of them moves, mirrors or mixes pixels."""
    what = {"table": "a table [N, D]", "tokens": "token ids [N, T]"}[kind]
    if augment:
        raise UserError(
            f"train.augment = {list(augment)}: augmentations are for images, and this data is {what}"
            " (set train.augment = [])"
        )
    others = [view for view in views if not (isinstance(view, str) and view.strip().lower() == "identity")]
    if others:
        raise UserError(
            f"query.views = {list(views)}: views other than 'identity' are for images, and this data is {what}"
            " (set query.views = ['identity'])"
        )


def _split_spec(spec: object, kind: str) -> tuple[str, str | None]:
    """Split 'crop:4' into ('crop', '4') and 'flip' into ('flip', None)."""
    if not isinstance(spec, str):
        raise UserError(f"{kind} must be strings like 'flip' or 'crop:4', got {spec!r}")
    name, colon, argument = spec.strip().lower().partition(":")
    return name.strip(), argument.strip() if colon else None


def _integer(spec: str, argument: str | None, what: str) -> int:
    try:
        return int(argument or "")
    except ValueError:
        raise UserError(f"{spec!r} needs an integer {what}, e.g. {spec.split(':')[0].strip()}:4") from None


def _check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    if len(image_shape) != 3 or any(not isinstance(d, Integral) or d < 1 for d in image_shape):
        raise UserError(f"image shape must be (height, width, channels) of positive integers, got {image_shape}")
    return tuple(int(d) for d in image_shape)


def _normalisation(
    mean: Sequence[float] | None, std: Sequence[float] | None, channels: int, pixel_max: float | None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) on the [0, 1] pixel scale for autoaugment; one value serves all channels."""
    per_channel = []
    for values, default, what in ((mean, 0.0, "mean"), (std, 1.0, "std")):
        values = (default,) if values is None else tuple(float(v) for v in values)
        values = values * channels if len(values) == 1 else values
        if len(values) != channels:
            raise UserError(f"autoaugment needs one normalisation {what} per channel: {len(values)} for {channels}")
        per_channel.append(values)
    mean_values, std_values = per_channel
    if not all(math.isfinite(v) for v in mean_values + std_values) or min(std_values) <= 0:
        raise UserError(f"autoaugment needs finite means and positive stds, got mean={mean} std={std}")
    if pixel_max is None:
        pixel_max = 255.0 if max(mean_values) > 1.0 else 1.0  # a mean above 1 cannot be on the [0, 1] scale
    if not (math.isfinite(pixel_max) and pixel_max > 0):
        raise UserError(f"autoaugment needs a positive pixel_max, got {pixel_max}")
    return tuple(m / pixel_max for m in mean_values), tuple(s / pixel_max for s in std_values)


def parse_augmentations(
    specs: Sequence[str],
    image_shape: tuple[int, int, int],
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    pixel_max: float | None = None,
) -> tuple[Augmentation, ...]:
    """Parse augmentation specs (see the module docstring) for images of shape (H, W, C).

    `mean`, `std` (per channel, or one value for all) describe the normalisation of the images that reach
    `augment_batch`: normalised = (raw - mean) / std, where raw pixels run from 0 (black) to `pixel_max`
    (white): 255 for uint8 data, 16 for scikit-learn's digits, 1 for [0, 1] floats. Only autoaugment uses
    them. Defaults: mean 0, std 1; pixel_max 255 if a mean is above 1, else 1. Raises UserError (one line) on
    unknown names, bad parameters, repeated names, or augmentations that do not fit the image shape.
    """
    if isinstance(specs, str):
        specs = [specs]
    height, width, channels = _check_image_shape(image_shape)

    augmentations: list[Augmentation] = []
    for spec in specs:
        name, argument = _split_spec(spec, "augmentations")
        if name not in TRAIN_AUGMENTATIONS:
            raise UserError(f"unknown augmentation {spec!r}; known: {TRAIN_USAGE}")
        if name in (a.name for a in augmentations):
            raise UserError(f"augmentation {name!r} is listed twice")
        if name in ("flip", "autoaugment") and argument is not None:
            raise UserError(f"augmentation {name!r} takes no parameter, got {spec!r}")
        if name == "flip":
            augmentations.append(Augmentation("flip"))
        elif name == "crop":
            pad = _integer(spec, argument, "padding in pixels")
            if pad < 0:
                raise UserError(f"{spec!r}: the crop padding must be >= 0")
            if pad >= min(height, width):
                raise UserError(f"{spec!r}: reflect padding must be smaller than the {height}x{width} image")
            augmentations.append(Augmentation("crop", size=pad))
        elif name == "cutout":
            size = _integer(spec, argument, "square side in pixels")
            if not 1 <= size <= min(height, width):
                raise UserError(f"{spec!r}: the cutout square must be 1 to {min(height, width)} pixels wide")
            augmentations.append(Augmentation("cutout", size=size))
        elif name == "autoaugment":
            mean_values, std_values = _normalisation(mean, std, channels, pixel_max)
            augmentations.append(Augmentation("autoaugment", mean=mean_values, std=std_values))
        else:  # mixup
            try:
                alpha = float(argument or "")
            except ValueError:
                raise UserError(f"{spec!r} needs a number ALPHA, e.g. mixup:1.0") from None
            if not (math.isfinite(alpha) and alpha > 0):
                raise UserError(f"{spec!r}: mixup's alpha must be a positive number")
            augmentations.append(Augmentation("mixup", alpha=alpha))
    return tuple(augmentations)


def parse_views(specs: Sequence[str], image_shape: tuple[int, int, int]) -> tuple[View, ...]:
    """Parse query-view specs for images of shape (H, W, C) into views, presets expanded in place.

    shifts:P = the 3x3 grid {-P, 0, P}^2 in row-major order (dy outer, dx inner; the identity is the 5th);
    mirror_shifts:P = that grid unmirrored, then mirrored (18 views, the LiRA paper's setting). Raises
    UserError on an empty list, unknown names, bad numbers, or shifts not smaller than the image.
    """
    if isinstance(specs, str):
        specs = [specs]
    height, width, _ = _check_image_shape(image_shape)
    if len(specs) == 0:
        raise UserError(f"at least one query view is needed, e.g. identity; known: {VIEW_USAGE}")
    views: list[View] = []
    for spec in specs:
        name, argument = _split_spec(spec, "views")
        if name not in VIEWS:
            raise UserError(f"unknown query view {spec!r}; known: {VIEW_USAGE}")
        if name in ("identity", "mirror"):
            if argument is not None:
                raise UserError(f"query view {name!r} takes no parameter, got {spec!r}")
            views.append(View(mirror=name == "mirror"))
            continue
        if name in ("shift", "mirror_shift"):
            parts = (argument or "").split(",")
            try:
                dx, dy = (int(part) for part in parts)
            except ValueError:
                raise UserError(f"{spec!r} needs two integers DX,DY, e.g. {name}:4,-4") from None
            candidates = [View(name == "mirror_shift", dx, dy)]
        else:  # shifts, mirror_shifts
            step = _integer(spec, argument, "shift in pixels")
            if step < 1:
                raise UserError(f"{spec!r}: the shift must be a positive number of pixels")
            grid = [(dx, dy) for dy in (-step, 0, step) for dx in (-step, 0, step)]
            mirrors = (False, True) if name == "mirror_shifts" else (False,)
            candidates = [View(mirror, dx, dy) for mirror in mirrors for dx, dy in grid]
        for view in candidates:
            if abs(view.dx) >= width or abs(view.dy) >= height:
                raise UserError(f"{spec!r}: shifts must be smaller than the {height}x{width} image")
        views.extend(candidates)
    return tuple(views)


# ------------------------------------------------------------------------------------------ augmentations
# Each takes a key and float32[B, H, W, C] images (targets too where it changes them) and keeps shapes.


def _per_image(mask: jax.Array) -> jax.Array:
    return mask[:, None, None, None]


def _uniform_integers(key: jax.Array, shape: tuple[int, ...], upper: Sequence[int]) -> jax.Array:
    """int32 array of `shape`, the last axis uniform in [0, upper[i]): one `uniform` draw, where randint
    would cost two threefry calls per call (compile time of the train step)."""
    upper_array = jnp.asarray(upper, jnp.float32)
    return jnp.minimum(jax.random.uniform(key, shape) * upper_array, upper_array - 1).astype(jnp.int32)


def random_flip(key: jax.Array, images: jax.Array, probability: float = 0.5) -> jax.Array:
    """Mirror each image left-right with `probability`. Why: the cheapest label-preserving symmetry of
    natural images, ~+1-2% CIFAR accuracy. A per-image bit and one `where`: no gather."""
    flip = jax.random.bernoulli(key, probability, images.shape[:1])
    return jnp.where(_per_image(flip), images[:, :, ::-1, :], images)


def _reflect(index: jax.Array, size: int) -> jax.Array:
    """Map indices in [-(size-1), 2*(size-1)] into [0, size) as reflect padding does (edge not repeated)."""
    index = jnp.abs(index)
    return jnp.where(index >= size, 2 * (size - 1) - index, index)


def random_pad_crop(key: jax.Array, images: jax.Array, pad: int) -> jax.Array:
    """Reflect-pad by `pad`, then cut one random H x W window per image (offsets 0..2*pad in each axis).

    Why: random translations by up to +/-pad pixels; reflection, not zeros, so the borders carry no artificial
    edges. How: the padded image is never built; each image's row and column indices are reflected
    arithmetically and gathered along rows, then along columns (two small gathers, ~2x faster on CPU than a
    vmapped `dynamic_slice` of a padded copy, and the same pixels).
    """
    if pad == 0:
        return images
    batch, height, width, _ = images.shape
    shift = _uniform_integers(key, (batch, 2), (2 * pad + 1, 2 * pad + 1)) - pad  # window offset minus pad
    rows = _reflect(jnp.arange(height) + shift[:, :1], height)  # [B, H]
    cols = _reflect(jnp.arange(width) + shift[:, 1:], width)  # [B, W]
    images = jnp.take_along_axis(images, rows[:, :, None, None], axis=1)
    return jnp.take_along_axis(images, cols[:, None, :, None], axis=2)


def random_cutout(key: jax.Array, images: jax.Array, size: int) -> jax.Array:
    """Zero a size x size square per image, its centre uniform over the image so it may be cut by the border
    (DeVries & Taylor, 2017). Zero is the data mean after normalisation. Why: forces the net to use the whole
    object, not one discriminative patch. Built as an outer product of row and column masks: no gather."""
    batch, height, width, _ = images.shape
    centre = _uniform_integers(key, (batch, 2), (height, width))
    top, left = centre[:, :1] - size // 2, centre[:, 1:] - size // 2
    rows, cols = jnp.arange(height), jnp.arange(width)
    in_rows = (rows >= top) & (rows < top + size)  # [B, H]
    in_cols = (cols >= left) & (cols < left + size)  # [B, W]
    square = in_rows[:, :, None, None] & in_cols[:, None, :, None]
    return jnp.where(square, jnp.zeros((), images.dtype), images)


def mixup(key: jax.Array, images: jax.Array, targets: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
    """Mix the batch with a random permutation of itself: x = l*x + (1-l)*x[perm], same for the targets,
    l ~ Beta(alpha, alpha), one l per batch as in Zhang et al. (2018). Why: a smoother decision boundary and
    less memorisation. The targets stay probability vectors (a convex combination of rows summing to 1)."""
    key_weight, key_permutation = jax.random.split(key)
    weight = jax.random.beta(key_weight, alpha, alpha).astype(images.dtype)
    permutation = jax.random.permutation(key_permutation, images.shape[0])
    mixed_images = weight * images + (1 - weight) * images[permutation]
    mixed_targets = weight * targets + (1 - weight) * targets[permutation]
    return mixed_images, mixed_targets.astype(targets.dtype)


_Apply = Callable[[jax.Array, jax.Array, jax.Array, Augmentation], tuple[jax.Array, jax.Array]]
_APPLY: dict[str, _Apply] = {
    "flip": lambda key, x, y, a: (random_flip(key, x), y),
    "crop": lambda key, x, y, a: (random_pad_crop(key, x, a.size), y),
    "cutout": lambda key, x, y, a: (random_cutout(key, x, a.size), y),
    "autoaugment": lambda key, x, y, a: (autoaugment_cifar10(key, x, a.mean, a.std), y),
    "mixup": lambda key, x, y, a: mixup(key, x, y, a.alpha),
}


def augment_batch(
    key: jax.Array, images: jax.Array, targets: jax.Array, augmentations: tuple[Augmentation, ...]
) -> tuple[jax.Array, jax.Array]:
    """Apply `augmentations` in order, each with its own subkey of `key`.

    key: PRNG key (one per model under vmap); images: float32[B, H, W, C] normalised; targets: float32[B, K]
    probability rows (one-hot or label-smoothed). Returns (images, targets) of the same shapes and dtypes.
    Jit with `augmentations` static; vmap over (key, images, targets) for a model axis.
    """
    if images.ndim != 4 or targets.ndim != 2 or targets.shape[0] != images.shape[0]:
        raise ValueError(f"expected images [B, H, W, C] and targets [B, K], got {images.shape}, {targets.shape}")
    if not augmentations:
        return images, targets
    keys = jax.random.split(key, len(augmentations))
    for augmentation, subkey in zip(augmentations, keys, strict=True):
        images, targets = _APPLY[augmentation.name](subkey, images, targets, augmentation)
    return images, targets


# ----------------------------------------------------------------------------------------------- views


def apply_views(images: jax.Array, views: tuple[View, ...]) -> jax.Array:
    """float32[B, H, W, C] -> float32[V, B, H, W, C], one slice per view in the order of `views`.

    The batch is reflect-padded once by the largest shift and mirrored once; every view is then a static
    slice (mirroring commutes with symmetric reflect padding), so V views cost V copies and nothing more.
    """
    if not views:
        raise ValueError("apply_views needs at least one view")
    if all(view == View() for view in views):  # identities only: any inputs, images or not ([B, ...] -> [V, B, ...])
        return jnp.stack([images] * len(views))
    height, width = images.shape[1:3]
    pad = max(max(abs(view.dx), abs(view.dy)) for view in views)
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect") if pad else images
    mirrored = padded[:, :, ::-1, :] if any(view.mirror for view in views) else None
    slices = []
    for view in views:
        source = mirrored if view.mirror else padded
        top, left = pad - view.dy, pad - view.dx
        slices.append(source[:, top : top + height, left : left + width, :])
    return jnp.stack(slices)
