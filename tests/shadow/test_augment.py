"""Tests of lira_jax.shadow.augment (training augmentations, query views) and lira_jax.shadow.autoaugment."""

import functools
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lira_jax.errors import UserError
from lira_jax.shadow import autoaugment
from lira_jax.shadow.augment import (
    TRAIN_AUGMENTATIONS,
    VIEWS,
    Augmentation,
    View,
    apply_views,
    augment_batch,
    mixup,
    parse_augmentations,
    parse_views,
    random_cutout,
    random_flip,
    random_pad_crop,
)

SHAPE = (10, 12, 3)  # not square, so that a mix-up of height and width shows
ALL_SPECS = ("flip", "crop:2", "cutout:4", "autoaugment", "mixup:0.5")
FAST = settings(max_examples=15, deadline=None)


def make_key(seed: int) -> jax.Array:
    """A typed PRNG key of the "rbg" implementation: on CPU its random draws compile ~10x faster than
    threefry's, whose compilation dominated these tests. The code under test does not depend on the key's
    implementation; `cheap_outputs` runs it with old-style threefry uint32[2] keys as well."""
    return jax.random.key(seed, impl="rbg")


def make_batch(batch: int = 8, shape: tuple[int, int, int] = SHAPE, classes: int = 5, seed: int = 0):
    """Distinct random normalised images float32[B, H, W, C] and one-hot targets float32[B, K]."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch, *shape)).astype(np.float32)
    targets = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
    return jnp.asarray(images), jnp.asarray(targets)


def vmapped(augmentations):
    """augment_batch jitted and vmapped over a leading model axis, as the train step uses it."""
    return jax.jit(jax.vmap(functools.partial(augment_batch, augmentations=augmentations)))


# ------------------------------------------------------------------------------------ jit, vmap, shapes


@pytest.fixture(scope="module")
def pipeline_outputs():
    """All five augmentations on digits-shaped images (8x8x1), jitted and vmapped over 3 models: twice with
    the same keys, once with other keys. (One compilation for all: compiling autoaugment and mixup's Beta
    sampler dominates the test time.)"""
    shape = (8, 8, 1)
    specs = ("flip", "crop:1", "cutout:3", "autoaugment", "mixup:0.5")
    augmentations = parse_augmentations(specs, shape, mean=(0.3,), std=(0.4,))
    images, targets = make_batch(8, shape, classes=10)
    models = 3
    images, targets = jnp.stack([images] * models), jnp.stack([targets] * models)  # the same data for all
    step = vmapped(augmentations)
    keys = jax.random.split(make_key(0), models)
    first = step(keys, images, targets)
    again = step(keys, images, targets)
    other = step(jax.random.split(make_key(1), models), images, targets)
    return images, targets, first, again, other


def test_pipeline_keeps_shapes_and_dtypes(pipeline_outputs):
    images, targets, (out_images, out_targets), _, _ = pipeline_outputs
    assert out_images.shape == images.shape and out_images.dtype == jnp.float32
    assert out_targets.shape == targets.shape and out_targets.dtype == jnp.float32
    assert np.isfinite(out_images).all() and np.isfinite(out_targets).all()
    np.testing.assert_allclose(out_targets.sum(-1), 1.0, atol=1e-5)


def test_each_model_draws_its_own_randomness(pipeline_outputs):
    _, _, (images, targets), (images_again, targets_again), (images_other, _) = pipeline_outputs
    np.testing.assert_array_equal(images, images_again)  # same key: the same augmentation
    np.testing.assert_array_equal(targets, targets_again)
    for a in range(3):  # same data for every model, different keys: different augmentations
        for b in range(a + 1, 3):
            assert not np.allclose(images[a], images[b])
    assert not np.allclose(images, images_other)


@pytest.fixture(scope="module")
def cheap_outputs():
    """flip, crop:2 and cutout:4 each alone, jitted and vmapped over 2 models on the same 64 images, with
    old-style uint32[2] keys (`pipeline_outputs` has typed keys): {spec: (x, y, x', y')}."""
    images, targets = make_batch(64)
    keys = jax.random.split(jax.random.PRNGKey(7), 2)
    outputs = {}
    for spec in ("flip", "crop:2", "cutout:4"):
        augmentations = parse_augmentations([spec], SHAPE)
        out = vmapped(augmentations)(keys, jnp.stack([images] * 2), jnp.stack([targets] * 2))
        outputs[spec] = (np.asarray(images), np.asarray(targets), *(np.asarray(o) for o in out))
    return outputs


@pytest.mark.parametrize("spec", ["flip", "crop:2", "cutout:4"])
def test_each_cheap_augmentation_jits_and_vmaps_alone(cheap_outputs, spec):
    # autoaugment and mixup alone: test_autoaugment_* and test_mixup_* (compiling them is what costs time)
    images, targets, out_images, out_targets = cheap_outputs[spec]
    assert out_images.shape == (2, *images.shape) and out_targets.shape == (2, *targets.shape)
    assert out_images.dtype == out_targets.dtype == np.float32
    assert not np.array_equal(out_images[0], out_images[1])  # the two models differ
    np.testing.assert_array_equal(out_targets[0], targets)


def test_no_augmentation_is_the_identity():
    images, targets = make_batch(3)
    out_images, out_targets = augment_batch(make_key(0), images, targets, ())
    assert out_images is images and out_targets is targets


# ------------------------------------------------------------------------------------------ flip, crop


def test_flip_is_exactly_a_mirror_when_forced():
    images, _ = make_batch(5)
    np.testing.assert_array_equal(random_flip(make_key(0), images, 1.0), images[:, :, ::-1, :])
    np.testing.assert_array_equal(random_flip(make_key(0), images, 0.0), images)


def test_flip_mirrors_some_images_and_keeps_the_others(cheap_outputs):
    images, _, flipped, _ = cheap_outputs["flip"]
    for model in flipped:
        mirrored = np.array([np.array_equal(f, i[:, ::-1]) for f, i in zip(model, images, strict=True)])
        kept = np.array([np.array_equal(f, i) for f, i in zip(model, images, strict=True)])
        assert (mirrored != kept).all()  # each image exactly one of the two
        assert 16 < mirrored.sum() < 48


def window_offsets(padded: np.ndarray, window: np.ndarray) -> list[tuple[int, int]]:
    """Every (top, left) at which `window` [H, W, C] sits in `padded` [H + 2P, W + 2P, C]."""
    height, width = window.shape[:2]
    return [
        (top, left)
        for top in range(padded.shape[0] - height + 1)
        for left in range(padded.shape[1] - width + 1)
        if np.array_equal(padded[top : top + height, left : left + width], window)
    ]


def test_crop_is_a_window_of_the_reflect_padded_image_and_offsets_vary(cheap_outputs):
    images, _, cropped, _ = cheap_outputs["crop:2"]
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    offsets = set()
    for model in cropped:
        for image, window in zip(padded, model, strict=True):
            found = window_offsets(image, window)
            assert len(found) == 1, "the crop is not (exactly) one window of the reflect-padded image"
            offsets.add(found[0])
    assert {top for top, _ in offsets} == {left for _, left in offsets} == set(range(5))  # 0 .. 2 * pad
    assert len(offsets) > 20  # of the 25 possible: each image its own offset


@pytest.mark.parametrize(("shape", "pad"), [((2, 3, 1), 1), ((5, 8, 2), 4), ((6, 7, 3), 0)])  # edge cases
def test_crop_window_on_small_shapes(shape, pad):
    images, _ = make_batch(16, shape)
    cropped = np.asarray(random_pad_crop(make_key(1), images, pad))
    padded = np.pad(np.asarray(images), ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    for image, window in zip(padded, cropped, strict=True):
        assert window_offsets(image, window)


# ---------------------------------------------------------------------------------------------- cutout


def test_cutout_zeroes_squares_at_varied_places(cheap_outputs):
    images, _, out, _ = cheap_outputs["cutout:4"]
    zeroed = out[0] == 0
    assert (out[0][~zeroed] == images[~zeroed]).all()
    assert len({tuple(np.argwhere(z[:, :, 0]).min(axis=0)) for z in zeroed}) > 20  # per-image squares


@FAST
@given(size=st.integers(1, 10), seed=st.integers(0, 2**16))
def test_cutout_zeroes_one_square_clipped_by_the_border(size, seed):
    images = jnp.ones((16, *SHAPE))
    out = np.asarray(random_cutout(make_key(seed), images, size))
    for image in out:
        zero = image == 0
        assert (zero == zero[:, :, :1]).all()  # the same square in every channel
        rows, cols = np.nonzero(zero[:, :, 0])
        assert rows.size > 0  # the centre is inside the image, so something is always cut
        assert (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) == rows.size  # a rectangle
        assert rows.max() - rows.min() + 1 <= size and cols.max() - cols.min() + 1 <= size
        if rows.min() > 0 and rows.max() < SHAPE[0] - 1 and cols.min() > 0 and cols.max() < SHAPE[1] - 1:
            assert rows.size == size * size  # not touching the border: the whole square
        assert (image[~zero] == 1).all()


# ---------------------------------------------------------------------------------------------- mixup


@FAST
@given(
    alpha=st.floats(0.05, 5.0),
    weight=st.floats(0.0, 1.0),
    smoothing=st.floats(0.0, 0.3),
    seed=st.integers(0, 2**16),
)
def test_mixup_is_one_convex_combination_of_pairs(alpha, weight, smoothing, seed):
    # The Beta(alpha, alpha) draw is replaced by `weight`: the property holds for every weight in [0, 1], and
    # compiling JAX's Beta sampler (rejection loops) costs seconds; pipeline_outputs runs the real one.
    calls = []

    def fake_beta(key, a, b, *args, **kwargs):
        calls.append((a, b))
        return jnp.float32(weight)

    batch = 7
    images, _ = make_batch(batch, seed=seed)
    targets = jnp.eye(batch) * (1 - smoothing) + smoothing / batch  # label-smoothed, row i peaks at class i
    with mock.patch.object(jax.random, "beta", fake_beta):
        mixed_images, mixed_targets = mixup(make_key(seed), images, targets, alpha)
    assert calls == [(alpha, alpha)]
    mixed_targets = np.asarray(mixed_targets, np.float64)
    np.testing.assert_allclose(mixed_targets.sum(-1), 1.0, atol=1e-5)
    assert (mixed_targets >= -1e-7).all()
    # Recover the partner of each row from the targets, then check images and targets mix with `weight`.
    partners = []
    for i in range(batch):
        expected_target = weight * targets[i] + (1 - weight) * targets  # [B, K]: for every possible partner
        partner = int(np.argmin(np.abs(expected_target - mixed_targets[i]).sum(-1)))
        np.testing.assert_allclose(mixed_targets[i], expected_target[partner], atol=1e-5)
        expected_image = weight * images[i] + (1 - weight) * images[partner]
        np.testing.assert_allclose(mixed_images[i], expected_image, atol=1e-5)
        partners.append(partner)
    if 1e-3 < weight < 1 - 1e-3 and smoothing < 0.29:
        assert sorted(partners) == list(range(batch))  # a permutation of the batch


# ------------------------------------------------------------------------------------------- autoaugment

CHANNEL_MEAN, CHANNEL_STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def test_policy_table_is_the_cifar10_policy():
    assert len(autoaugment.CIFAR10_POLICY) == 25
    for sub_policy in autoaugment.CIFAR10_POLICY:
        assert len(sub_policy) == 2
        for op, probability, level in sub_policy:
            assert op in autoaugment.OPS and 0 <= probability <= 1
            assert (level is None) == (op in ("Invert", "AutoContrast", "Equalize"))
    assert autoaugment.op_value("Posterize", 7, 32, 32) == 5  # torchvision's bins
    assert autoaugment.op_value("Solarize", 9, 32, 32) == 0
    assert autoaugment.op_value("TranslateX", 9, 32, 32) == pytest.approx(150 / 331 * 32)


def test_autoaugment_jits_vmaps_and_stays_in_the_normalised_pixel_range():
    rng = np.random.default_rng(0)
    pixels = rng.uniform(size=(64, 16, 16, 3)).astype(np.float32)
    mean, std = np.array(CHANNEL_MEAN, np.float32), np.array(CHANNEL_STD, np.float32)
    images = jnp.asarray((pixels - mean) / std)
    augmentations = parse_augmentations(["autoaugment"], (16, 16, 3), mean=CHANNEL_MEAN, std=CHANNEL_STD)
    targets = jnp.ones((2, 64, 1))
    keys = jax.random.split(make_key(0), 2)
    out, out_targets = vmapped(augmentations)(keys, jnp.stack([images] * 2), targets)
    assert out.shape == (2, 64, 16, 16, 3) and out.dtype == jnp.float32
    np.testing.assert_array_equal(out_targets, targets)
    assert not np.allclose(out[0], out[1])  # each model its own sub-policies
    back = np.asarray(out) * std + mean
    assert back.min() >= -1e-5 and back.max() <= 1 + 1e-5
    changed = np.abs(np.asarray(out) - np.asarray(images)).max(axis=(2, 3, 4)) > 1e-4  # [models, B]
    assert (changed.sum(axis=1) > 20).all() and (changed.sum(axis=1) < 64).all()  # a few draw no operation
    np.testing.assert_allclose(np.asarray(out)[~changed], np.asarray(images)[np.nonzero(~changed)[1]], atol=1e-5)


# op -> (value, the same op by Pillow on the uint8 image, tolerance in levels, share of pixels beyond it).
# Ours stays continuous where PIL rounds to uint8 between steps: 1 level. Nearest-neighbour warps may break
# exact half-pixel ties differently (float32 vs double): a small share of pixels, none with these values.
PIL_REFERENCE = {
    "Invert": (0.0, lambda im, v, ops, _: ops.invert(im), 0, 0.0),
    "Solarize": (100.0, lambda im, v, ops, _: ops.solarize(im, v), 0, 0.0),
    "Posterize": (3.0, lambda im, v, ops, _: ops.posterize(im, int(v)), 0, 0.0),
    "Equalize": (0.0, lambda im, v, ops, _: ops.equalize(im), 0, 0.0),
    "AutoContrast": (0.0, lambda im, v, ops, _: ops.autocontrast(im), 1, 0.0),
    "Brightness": (0.4, lambda im, v, _, enhance: enhance.Brightness(im).enhance(1 + v), 1, 0.0),
    "Color": (-0.7, lambda im, v, _, enhance: enhance.Color(im).enhance(1 + v), 1, 0.0),
    "Contrast": (0.6, lambda im, v, _, enhance: enhance.Contrast(im).enhance(1 + v), 1, 0.0),
    "Sharpness": (0.9, lambda im, v, _, enhance: enhance.Sharpness(im).enhance(1 + v), 1, 0.0),
    "ShearX": (0.27, lambda im, v, *_: _affine(im, (1, v, 0, 0, 1, 0)), 0, 0.005),
    "ShearY": (-0.23, lambda im, v, *_: _affine(im, (1, 0, 0, v, 1, 0)), 0, 0.005),
    "TranslateX": (5.0, lambda im, v, *_: _affine(im, (1, 0, v, 0, 1, 0)), 0, 0.0),
    "TranslateY": (-4.0, lambda im, v, *_: _affine(im, (1, 0, 0, 0, 1, v)), 0, 0.0),
    "Rotate": (20.0, lambda im, v, *_: im.rotate(v, fillcolor=(128, 128, 128)), 0, 0.005),
}


def _affine(image, data):
    from PIL import Image

    return image.transform(image.size, Image.Transform.AFFINE, data, Image.Resampling.NEAREST, fillcolor=(128,) * 3)


apply_ops = jax.jit(autoaugment.apply_ops)  # one compilation, shared by the op tests below


def op_test_images() -> np.ndarray:
    """uint8[14, 16, 20, 3] random images: full-range, low-contrast, and with repeated content."""
    rng = np.random.default_rng(1)
    levels = rng.integers(20, 236, size=(len(autoaugment.OPS), 16, 20, 3)).astype(np.uint8)
    levels[1::3] = levels[1::3] // 2 + 60  # low contrast
    levels[2::3, :, :10] = levels[2::3, :, 10:]  # repeated content
    return levels


@pytest.mark.parametrize("op", sorted(PIL_REFERENCE))
def test_each_op_matches_pillow(op):
    pytest.importorskip("PIL")
    from PIL import Image, ImageEnhance, ImageOps

    value, reference, tolerance, mismatch = PIL_REFERENCE[op]
    levels = op_test_images()
    batch = len(levels)
    ours = apply_ops(
        jnp.asarray(levels / 255.0, jnp.float32),
        jnp.full((batch,), autoaugment.OP_CODE[op], jnp.int32),
        jnp.full((batch,), value, jnp.float32),
    )
    ours = np.round(np.asarray(ours) * 255.0).astype(int)
    theirs = np.stack([np.asarray(reference(Image.fromarray(lv), value, ImageOps, ImageEnhance)) for lv in levels])
    differs = np.abs(ours - theirs.astype(int)) > tolerance
    assert differs.mean() <= mismatch, f"{op}: {differs.mean():.3f} of the pixels differ from Pillow"


def test_ops_chosen_per_image_equal_the_ops_applied_alone():
    rng = np.random.default_rng(2)
    pixels = jnp.asarray(op_test_images() / 255.0, jnp.float32)
    batch = len(pixels)
    codes = jnp.asarray(rng.permutation(batch), jnp.int32)  # every op once, in a random order
    levels = {name: None if name in ("Invert", "AutoContrast", "Equalize") else 6 for name in autoaugment.OPS}
    values = [autoaugment.op_value(autoaugment.OPS[c], levels[autoaugment.OPS[c]], 16, 20) for c in codes]
    values = jnp.asarray(values, jnp.float32) * jnp.asarray(rng.choice([-1, 1], batch))  # random signs
    values = jnp.where(codes == autoaugment.OP_CODE["Posterize"], 4.0, values)
    values = jnp.where(codes == autoaugment.OP_CODE["Solarize"], 128.0, values)
    together = apply_ops(pixels, codes, values)
    for i in range(batch):
        alone = apply_ops(pixels, jnp.full((batch,), codes[i], jnp.int32), jnp.full((batch,), values[i], jnp.float32))
        np.testing.assert_allclose(together[i], alone[i], atol=1e-6, err_msg=autoaugment.OPS[int(codes[i])])
        assert not np.allclose(alone[i], pixels[i]), autoaugment.OPS[int(codes[i])]  # the op did something


def test_autoaugment_normalisation_is_parsed():
    (augmentation,) = parse_augmentations(["autoaugment"], (4, 4, 3), mean=(125.3, 123.0, 113.9), std=(63, 62, 66))
    assert augmentation.mean[0] == pytest.approx(125.3 / 255) and augmentation.std[2] == pytest.approx(66 / 255)
    (augmentation,) = parse_augmentations(["autoaugment"], (4, 4, 3), mean=[0.5], std=[0.2])
    assert augmentation.mean == (0.5,) * 3 and augmentation.std == (0.2,) * 3
    assert parse_augmentations(["autoaugment"], (4, 4, 1))[0].std == (1.0,)
    (digits,) = parse_augmentations(["autoaugment"], (8, 8, 1), mean=(4.9,), std=(6.0,), pixel_max=16)
    assert digits.mean == (4.9 / 16,) and digits.std == (6.0 / 16,)
    assert parse_augmentations(["flip"], (4, 4, 3), mean=(1, 2), std=(0,)) == (Augmentation("flip"),)
    with pytest.raises(UserError, match="per channel"):
        parse_augmentations(["autoaugment"], (4, 4, 3), mean=(0.5, 0.5), std=(0.2, 0.2))
    with pytest.raises(UserError, match="positive"):
        parse_augmentations(["autoaugment"], (4, 4, 1), mean=(0.5,), std=(0.0,))
    with pytest.raises(UserError, match="pixel_max"):
        parse_augmentations(["autoaugment"], (4, 4, 1), pixel_max=0)


# ---------------------------------------------------------------------------------------------- parsing


def test_parse_augmentations_round_trips_and_is_hashable():
    augmentations = parse_augmentations([" Flip", "crop:4", "cutout:8", "autoaugment", "mixup:1.5"], (32, 32, 3))
    assert [str(a) for a in augmentations] == ["flip", "crop:4", "cutout:8", "autoaugment", "mixup:1.5"]
    assert hash(augmentations) == hash(parse_augmentations([str(a) for a in augmentations], (32, 32, 3)))
    assert {a.name for a in augmentations} == set(TRAIN_AUGMENTATIONS)
    assert parse_augmentations([], (8, 8, 1)) == ()
    assert parse_augmentations(["crop:1"], (8, 8, 1)) == (Augmentation("crop", size=1),)


@pytest.mark.parametrize(
    ("specs", "shape", "message"),
    [
        (["rotate"], SHAPE, "unknown augmentation"),
        (["crop"], SHAPE, "integer"),
        (["crop:x"], SHAPE, "integer"),
        (["crop:-1"], SHAPE, ">= 0"),
        (["crop:10"], SHAPE, "smaller than"),
        (["crop:8"], (8, 8, 1), "smaller than"),
        (["cutout:0"], SHAPE, "cutout"),
        (["cutout:11"], SHAPE, "cutout"),
        (["mixup"], SHAPE, "ALPHA"),
        (["mixup:0"], SHAPE, "positive"),
        (["mixup:-1"], SHAPE, "positive"),
        (["mixup:nan"], SHAPE, "positive"),
        (["flip:2"], SHAPE, "no parameter"),
        (["flip", "flip"], SHAPE, "twice"),
        ([3], SHAPE, "strings"),
        (["flip"], (8, 8), "image shape"),
        (["flip"], (0, 8, 1), "image shape"),
    ],
)
def test_bad_augmentation_specs_raise_one_line_user_errors(specs, shape, message):
    with pytest.raises(UserError, match=message) as error:
        parse_augmentations(specs, shape)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "at least one"),
        (["zoom"], "unknown query view"),
        (["mirror:2"], "no parameter"),
        (["shift:1"], "two integers"),
        (["shift:a,b"], "two integers"),
        (["shift:12,0"], "smaller than"),
        (["shift:0,-10"], "smaller than"),
        (["shifts:10"], "smaller than"),
        (["mirror_shifts:0"], "positive"),
        (["shifts:-2"], "positive"),
    ],
)
def test_bad_view_specs_raise_one_line_user_errors(specs, message):
    with pytest.raises(UserError, match=message) as error:
        parse_views(specs, SHAPE)
    assert "\n" not in str(error.value)


@FAST
@given(text=st.text(alphabet="flipcroutmxaugesh:0123456789-.,_ ", max_size=16))
def test_any_spec_string_parses_or_raises_user_error(text):
    for parse in (parse_augmentations, parse_views):
        try:
            parse([text], (8, 8, 1))
        except UserError as error:
            assert "\n" not in str(error)


# ----------------------------------------------------------------------------------------------- views


def test_view_presets_and_order():
    views = parse_views(["mirror_shifts:4"], (32, 32, 3))
    assert len(views) == 18 and len(set(views)) == 18
    assert views[4] == View() and views[13] == View(mirror=True)
    assert views[:9] == parse_views(["shifts:4"], (32, 32, 3))
    assert all(not v.mirror for v in views[:9]) and all(v.mirror for v in views[9:])
    assert views[0] == View(dx=-4, dy=-4) and views[1] == View(dx=0, dy=-4)  # dy outer, dx inner
    assert [str(v) for v in parse_views(["identity", "mirror", "shift:1,-2", "mirror_shift:3,0"], SHAPE)] == [
        "identity",
        "mirror",
        "shift:1,-2",
        "mirror_shift:3,0",
    ]
    assert {str(v).split(":")[0] for v in views} <= set(VIEWS)
    assert parse_views([str(v) for v in views], (32, 32, 3)) == views


def test_identity_and_mirror_views():
    images, _ = make_batch(4)
    identity, mirror = apply_views(images, (View(), View(mirror=True)))
    np.testing.assert_array_equal(identity, images)
    np.testing.assert_array_equal(mirror, images[:, :, ::-1])
    np.testing.assert_array_equal(apply_views(mirror, (View(mirror=True),))[0], images)  # mirror twice


def reference_view(images: np.ndarray, view: View) -> np.ndarray:
    """NumPy: mirror, reflect-pad, then take the window that moves the content by (dx right, dy down)."""
    height, width = images.shape[1:3]
    source = images[:, :, ::-1] if view.mirror else images
    pad = max(abs(view.dx), abs(view.dy))
    padded = np.pad(source, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    return padded[:, pad - view.dy : pad - view.dy + height, pad - view.dx : pad - view.dx + width]


def test_views_translate_with_reflect_padding():
    height, width = 10, 11
    images, _ = make_batch(2, (height, width, 2))
    shifts = [(dx, dy) for dx in (-10, -4, -1, 0, 3, 10) for dy in (-9, -2, 0, 1, 9)]
    views = tuple(View(mirror, dx, dy) for mirror in (False, True) for dx, dy in shifts)  # one padding for all
    out = np.asarray(jax.jit(apply_views, static_argnums=1)(images, views))
    assert out.shape == (len(views), 2, height, width, 2)
    for view, viewed in zip(views, out, strict=True):
        np.testing.assert_array_equal(viewed, reference_view(np.asarray(images), view), err_msg=str(view))
        if view.dx >= 0 and view.dy >= 0:  # content moves right by dx and down by dy
            source = np.asarray(images)[:, :, ::-1] if view.mirror else np.asarray(images)
            moved = source[:, : height - view.dy, : width - view.dx]
            np.testing.assert_array_equal(viewed[:, view.dy :, view.dx :], moved)


def test_apply_views_order_and_shape():
    images, _ = make_batch(3, (8, 8, 1))
    views = parse_views(["mirror_shifts:1"], (8, 8, 1))
    out = apply_views(images, views)
    assert out.shape == (18, 3, 8, 8, 1) and out.dtype == jnp.float32
    for index, view in enumerate(views):
        np.testing.assert_array_equal(out[index], reference_view(np.asarray(images), view))
