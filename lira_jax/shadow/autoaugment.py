"""The AutoAugment CIFAR-10 policy (Cubuk et al., 2019) in pure JAX: per image, on device, jit- and vmappable.

The policy is 25 sub-policies of two operations, each with a probability and a magnitude level 0..9. Every
image draws one sub-policy uniformly, then applies its first operation with the first probability and its
second with the second. The table and the level-to-value mapping are torchvision's
(`AutoAugmentPolicy.CIFAR10`, `_augmentation_space(num_bins=10)`); signed operations (the geometric ones
and the four enhancements) take a random sign per image, as torchvision does.

Pixel space. The trainer passes normalised float32 images; the operations are defined on pixels (Solarize's
threshold, Posterize's bits, Equalize's histogram, the clipping that PIL's uint8 images get for free). So the
images are un-normalised to [0, 1] with the per-channel mean/std, transformed, clipped to [0, 1] after each
operation as uint8 would be, and re-normalised. Solarize, Posterize and Equalize quantise to 256 levels as
PIL does; the other operations stay continuous (no rounding to uint8), a deliberate small departure.

Geometric operations sample nearest-neighbour, like PIL's default, and fill what comes from outside the image
with gray 128/255: the fill of the original PIL implementations, and about the data mean, i.e. about 0 after
normalisation, so it matches what cutout writes.

Per-image selection, and why not `lax.switch`: under vmap a switch on a per-image index runs every branch
anyway, so 25 sub-policies would cost 50 operation evaluations. Instead each of the two stages computes every
operation *type* of the policy once for the whole batch, with per-image magnitudes, and picks per image with
`jnp.where`. Two more shares: the five geometric operations are one affine warp with a per-image matrix (one
gather instead of five), and the four enhancements are one blend `degenerate + f * (x - degenerate)` with a
per-image degenerate image. What remains per stage: one warp, one blend, four cheap pointwise maps and one
histogram equalisation (the most expensive part: a scatter-add and a gather). Compile time matters too (the
train step is compiled per run): the two stages share one body through `lax.scan`, and all the randomness
comes from a single `uniform` draw.
"""

import jax
import jax.numpy as jnp
import numpy as np

# torchvision's CIFAR-10 table: ((op, probability, level), (op, probability, level)); None = no magnitude.
CIFAR10_POLICY: tuple[tuple[tuple[str, float, int | None], tuple[str, float, int | None]], ...] = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)

GEOMETRIC_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
ENHANCE_OPS = ("Brightness", "Color", "Contrast", "Sharpness")
POINTWISE_OPS = ("Invert", "Solarize", "Posterize", "AutoContrast", "Equalize")
OPS = GEOMETRIC_OPS + ENHANCE_OPS + POINTWISE_OPS
OP_CODE = {name: code for code, name in enumerate(OPS)}
SIGNED_OPS = frozenset(GEOMETRIC_OPS + ENHANCE_OPS)
FILL_GRAY = 128.0 / 255.0
NUM_LEVELS = 10


def op_value(op: str, level: int | None, height: int, width: int) -> float:
    """torchvision's magnitude for `level` of 0..9 (unsigned; signed ops get a random sign per image)."""
    if level is None:
        return 0.0
    fraction = level / (NUM_LEVELS - 1)
    if op in ("ShearX", "ShearY"):
        return 0.3 * fraction  # shear factor
    if op == "TranslateX":
        return 150.0 / 331.0 * width * fraction  # pixels
    if op == "TranslateY":
        return 150.0 / 331.0 * height * fraction
    if op == "Rotate":
        return 30.0 * fraction  # degrees
    if op in ENHANCE_OPS:
        return 0.9 * fraction  # enhancement factor is 1 +/- this
    if op == "Posterize":
        return float(8 - round(level / ((NUM_LEVELS - 1) / 4)))  # bits kept
    if op == "Solarize":
        return 255.0 * (1.0 - fraction)  # threshold on the 0..255 scale
    raise ValueError(f"operation {op} takes no magnitude")


def _grayscale(pixels: jax.Array) -> jax.Array:
    """float32[B, H, W, C] -> [B, H, W, 1]: ITU-R 601 luma for RGB (PIL's convert("L")), else the mean."""
    if pixels.shape[-1] == 3:
        return pixels @ jnp.array([0.299, 0.587, 0.114], pixels.dtype)[:, None]
    return pixels.mean(axis=-1, keepdims=True)


def _smoothed(pixels: jax.Array) -> jax.Array:
    """PIL's SMOOTH filter (3x3 kernel [[1,1,1],[1,5,1],[1,1,1]] / 13), border pixels kept, for Sharpness.

    A separable 3x3 box sum (two passes of two adds) plus 4x the centre: several times faster on CPU than
    nine shifted slices or a depthwise convolution.
    """
    height, width = pixels.shape[1:3]
    if height < 3 or width < 3:
        return pixels
    row_sums = pixels[:, :-2] + pixels[:, 1:-1] + pixels[:, 2:]
    box_sums = row_sums[:, :, :-2] + row_sums[:, :, 1:-1] + row_sums[:, :, 2:]
    interior = (box_sums + 4.0 * pixels[:, 1:-1, 1:-1]) / 13.0
    y, x = np.arange(height)[:, None], np.arange(width)[None, :]
    border = (y == 0) | (y == height - 1) | (x == 0) | (x == width - 1)
    return jnp.where(border[None, :, :, None], pixels, jnp.pad(interior, ((0, 0), (1, 1), (1, 1), (0, 0))))


def _source_matrices(op: jax.Array, value: jax.Array, height: int, width: int) -> jax.Array:
    """int32[B], float32[B] -> float32[B, 2, 3]: maps an output pixel centre (y, x, 1) to its source (y, x).

    The same conventions as PIL's `Image.transform` that the reference implementations call: shear about the
    origin (x_src = x + s*y), translation moves the content by -value, rotation about the image centre.
    """
    zero, one = jnp.zeros_like(value), jnp.ones_like(value)
    angle = -jnp.deg2rad(value)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    centre_y, centre_x = height / 2.0, width / 2.0
    rows = {  # each entry: (y_src row, x_src row), each a tuple (coef_y, coef_x, offset)
        "ShearX": ((one, zero, zero), (value, one, zero)),
        "ShearY": ((one, value, zero), (zero, one, zero)),
        "TranslateX": ((one, zero, zero), (zero, one, value)),
        "TranslateY": ((one, zero, value), (zero, one, zero)),
        "Rotate": (
            (cos, -sin, centre_y - cos * centre_y + sin * centre_x),
            (sin, cos, centre_x - sin * centre_y - cos * centre_x),
        ),
    }
    matrix = jnp.broadcast_to(jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (value.shape[0], 2, 3))
    for name, (row_y, row_x) in rows.items():
        candidate = jnp.stack([jnp.stack(row_y, axis=-1), jnp.stack(row_x, axis=-1)], axis=1)
        matrix = jnp.where((op == OP_CODE[name])[:, None, None], candidate, matrix)
    return matrix


def _warp(pixels: jax.Array, matrices: jax.Array) -> jax.Array:
    """Nearest-neighbour affine warp, one matrix per image (float32[B, 2, 3]); outside pixels become gray."""
    batch, height, width, channels = pixels.shape
    y, x = jnp.meshgrid(jnp.arange(height) + 0.5, jnp.arange(width) + 0.5, indexing="ij")  # pixel centres
    source_y = jnp.floor(jnp.einsum("bk,khw->bhw", matrices[:, 0], jnp.stack([y, x, jnp.ones_like(x)])))
    source_x = jnp.floor(jnp.einsum("bk,khw->bhw", matrices[:, 1], jnp.stack([y, x, jnp.ones_like(x)])))
    inside = (source_y >= 0) & (source_y < height) & (source_x >= 0) & (source_x < width)
    row, col = jnp.clip(source_y, 0, height - 1), jnp.clip(source_x, 0, width - 1)
    flat_index = (row * width + col).astype(jnp.int32)
    gathered = jnp.take_along_axis(
        pixels.reshape(batch, height * width, channels), flat_index.reshape(batch, -1, 1), axis=1
    ).reshape(pixels.shape)
    return jnp.where(inside[..., None], gathered, FILL_GRAY)


def _levels(pixels: jax.Array) -> jax.Array:
    """float32 pixels in [0, 1] -> int32 levels 0..255, as PIL's uint8 would hold them."""
    return jnp.clip(jnp.round(pixels * 255.0), 0, 255).astype(jnp.int32)


def _equalize(pixels: jax.Array) -> jax.Array:
    """Per-channel histogram equalisation with PIL's `ImageOps.equalize` lookup table, on 256 levels.

    Each pixel's slot (image, channel, level) in one flat [B * C * 256] array serves both the histogram (one
    scatter-add, `bincount`) and the table lookup (one gather); no transposes.
    """
    batch, height, width, channels = pixels.shape
    levels = _levels(pixels)
    histogram_row = np.arange(batch * channels, dtype=np.int32).reshape(batch, 1, 1, channels) * 256
    slot = histogram_row + levels  # [B, H, W, C]
    histogram = jnp.bincount(slot.ravel(), length=batch * channels * 256).reshape(batch, channels, 256)
    top_count = jnp.take_along_axis(histogram, levels.max(axis=(1, 2))[..., None], axis=-1)
    step = (height * width - top_count) // 255  # [B, C, 1]; 0: a single level, or too few pixels
    below = jnp.cumsum(histogram, axis=-1) - histogram
    table = jnp.clip((step // 2 + below) // jnp.maximum(step, 1), 0, 255)
    equalized = table.ravel()[slot] / 255.0
    unchanged = (step == 0)[:, None, None, :, 0]
    return jnp.where(unchanged, pixels, equalized.astype(pixels.dtype))


def _autocontrast(pixels: jax.Array) -> jax.Array:
    """Stretch each channel of each image to the full [0, 1] range (PIL's autocontrast with no cutoff)."""
    low = pixels.min(axis=(1, 2), keepdims=True)
    high = pixels.max(axis=(1, 2), keepdims=True)
    spread = high - low
    return jnp.where(spread > 0, (pixels - low) / jnp.where(spread > 0, spread, 1.0), pixels)


def _per_image(value: jax.Array) -> jax.Array:
    return value[:, None, None, None]


def apply_ops(
    pixels: jax.Array, op: jax.Array, value: jax.Array, present: frozenset[str] = frozenset(OPS)
) -> jax.Array:
    """Apply operation `op[b]` with signed magnitude `value[b]` to each image of `pixels`.

    pixels: float32[B, H, W, C] in [0, 1]; op: int32[B] codes of `OPS`; value: float32[B] (shear factor,
    pixels, degrees, enhancement offset, bits or 0..255 threshold, see `op_value`). `present` names the
    operations that can occur (static): only those are computed. Returns float32[B, H, W, C] in [0, 1].
    """
    height, width = pixels.shape[1:3]
    result = pixels

    def choose(mask: jax.Array, candidate: jax.Array) -> None:
        nonlocal result
        result = jnp.where(_per_image(mask), candidate, result)

    if present & set(GEOMETRIC_OPS):
        is_geometric = jnp.isin(op, jnp.array([OP_CODE[name] for name in GEOMETRIC_OPS]))
        choose(is_geometric, _warp(pixels, _source_matrices(op, value, height, width)))
    if present & set(ENHANCE_OPS):  # one blend for all four: degenerate + factor * (pixels - degenerate)
        gray = _grayscale(pixels)
        degenerates = {
            "Brightness": jnp.zeros_like(pixels),
            "Color": jnp.broadcast_to(gray, pixels.shape),
            "Contrast": jnp.broadcast_to(gray.mean(axis=(1, 2, 3), keepdims=True), pixels.shape),
            "Sharpness": _smoothed(pixels),
        }
        degenerate = pixels
        for name in ENHANCE_OPS:
            if name in present:
                degenerate = jnp.where(_per_image(op == OP_CODE[name]), degenerates[name], degenerate)
        blended = degenerate + _per_image(1.0 + value) * (pixels - degenerate)
        is_enhance = jnp.isin(op, jnp.array([OP_CODE[name] for name in ENHANCE_OPS]))
        choose(is_enhance, jnp.clip(blended, 0.0, 1.0))
    pointwise = {
        "Invert": lambda: 1.0 - pixels,
        "Solarize": lambda: jnp.where(pixels * 255.0 < _per_image(value), pixels, 1.0 - pixels),
        "Posterize": lambda: _posterize(pixels, value),
        "AutoContrast": lambda: _autocontrast(pixels),
        "Equalize": lambda: _equalize(pixels),
    }
    for name, compute in pointwise.items():
        if name in present:
            choose(op == OP_CODE[name], compute())
    return result


def _posterize(pixels: jax.Array, bits: jax.Array) -> jax.Array:
    """Keep the top `bits[b]` bits of each 8-bit level."""
    dropped = _per_image(8 - bits.astype(jnp.int32))
    return ((_levels(pixels) >> dropped) << dropped) / 255.0


def _policy_tables(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR10_POLICY as arrays [25, 2]: op codes (int32), probabilities and unsigned values (float32)."""
    codes = np.array([[OP_CODE[op] for op, _, _ in sub] for sub in CIFAR10_POLICY], np.int32)
    probabilities = np.array([[p for _, p, _ in sub] for sub in CIFAR10_POLICY], np.float32)
    values = np.array(
        [[op_value(op, level, height, width) for op, _, level in sub] for sub in CIFAR10_POLICY], np.float32
    )
    return codes, probabilities, values


def autoaugment_cifar10(
    key: jax.Array, images: jax.Array, mean: tuple[float, ...], std: tuple[float, ...]
) -> jax.Array:
    """The AutoAugment CIFAR-10 policy, one random sub-policy per image.

    key: a PRNG key; images: float32[B, H, W, C], normalised as (pixel - mean) / std with pixels in [0, 1] and
    `mean`, `std` per channel (length C). Returns float32[B, H, W, C], normalised the same way.
    """
    batch, height, width, _ = images.shape
    codes, probabilities, values = _policy_tables(height, width)
    signed = np.isin(codes, [OP_CODE[name] for name in SIGNED_OPS])
    mean_array, std_array = jnp.asarray(mean, images.dtype), jnp.asarray(std, images.dtype)
    pixels = jnp.clip(images * std_array + mean_array, 0.0, 1.0)

    # One uniform draw for everything (per image: a sub-policy, then per stage whether it applies and its
    # sign): a single threefry call compiles much faster than randint + uniform + bernoulli.
    uniform = jax.random.uniform(key, (5, batch))
    sub_policy = jnp.minimum((uniform[0] * len(CIFAR10_POLICY)).astype(jnp.int32), len(CIFAR10_POLICY) - 1)
    applied = uniform[1:3] < jnp.asarray(probabilities)[sub_policy].T  # [2, B]
    sign = jnp.where(uniform[3:5] < 0.5, 1.0, -1.0)
    op = jnp.asarray(codes)[sub_policy].T  # [2, B]
    value = jnp.where(jnp.asarray(signed)[sub_policy].T, sign, 1.0) * jnp.asarray(values)[sub_policy].T

    # Both stages run one compiled body (lax.scan): ~35% less compile time than unrolling them, same speed.
    present = frozenset(OPS[code] for code in codes.ravel())

    def stage(pixels: jax.Array, draws: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        op, applied, value = draws
        return jnp.where(_per_image(applied), apply_ops(pixels, op, value, present), pixels), None

    pixels, _ = jax.lax.scan(stage, pixels, (op, applied, value))
    return ((pixels - mean_array) / std_array).astype(images.dtype)
