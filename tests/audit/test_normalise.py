"""Logits, keep and labels as people have them (dtypes, layouts, memmaps, tensors), and the φ shape rule."""

import sys

import numpy as np
import pytest

from lira_jax.audit.inputs.normalise import as_numpy, normalise
from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.errors import UserError

M, N, V, C = 4, 6, 2, 3


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(M, N, V, C)), rng.random((M, N)) < 0.5, rng.integers(0, C, N)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [np.uint8, np.int16, np.int32, np.uint64])
def test_dtypes_people_have(dtype, label_dtype):
    logits, keep, labels = _arrays()
    inputs = normalise(logits.astype(dtype), keep.astype(np.int8), labels.astype(label_dtype))
    assert inputs.logits.dtype == dtype and inputs.logits.shape == (M, N, V, C)
    assert inputs.keep.dtype == bool and inputs.labels.dtype == np.int64
    np.testing.assert_array_equal(inputs.keep, keep)


def test_one_view_gets_the_view_axis_and_views_are_chosen():
    logits, keep, labels = _arrays()
    assert normalise(logits[:, :, 0], keep, labels).logits.shape == (M, N, 1, C)
    np.testing.assert_array_equal(normalise(logits, keep, labels, views=[1]).logits, logits[:, :, [1]])
    with pytest.raises(UserError, match="views must be distinct view indices"):
        normalise(logits, keep, labels, views=[2])


def test_memmaps_stay_lazy(tmp_path):
    logits, keep, labels = _arrays()
    np.save(tmp_path / "logits.npy", logits.astype(np.float16))
    mapped = np.load(tmp_path / "logits.npy", mmap_mode="r")
    assert isinstance(normalise(mapped, keep, labels).logits, np.memmap)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda lg, k, lb: (lg.astype(int), k, lb), "float16, float32 or float64"),
        (lambda lg, k, lb: (lg[0, 0], k, lb), r"\[M, N, C\] or \[M, N, V, C\]"),
        (lambda lg, k, lb: (lg, k.T, lb), "transposed"),
        (lambda lg, k, lb: (lg, k * 2, lb), "bool or 0/1"),
        (lambda lg, k, lb: (lg, k.astype(float), lb), "bool or 0/1"),
        (lambda lg, k, lb: (lg, k, lb.astype(float)), "integers"),
        (lambda lg, k, lb: (lg, k, np.eye(C, dtype=int)[lb]), r"labels must be \[N\]"),
        (lambda lg, k, lb: (lg, k, lb + C), r"lie in \[0, 3\)"),
        (lambda lg, k, lb: (lg[:1], k[:1], lb), "M >= 2"),
        (lambda lg, k, lb: (lg, [[object()]], lb), "keep"),
    ],
)
def test_wrong_inputs_are_one_line_errors(change, message):
    with pytest.raises(UserError, match=message) as error:
        normalise(*change(*_arrays()))
    assert "\n" not in str(error.value)


class _FakeDevice:
    def __init__(self, kind):
        self.type = kind


class _FakeTensor:
    """Stands in for torch.Tensor where torch is not installed: same module name, detach(), device."""

    __module__ = "torch"

    def __init__(self, array, device="cpu"):
        self.array, self.device, self.detached = array, _FakeDevice(device), False

    def detach(self):
        self.detached = True
        return self

    def numpy(self):
        assert self.detached, "numpy() on a tensor that requires grad raises in torch"
        return self.array


def test_tensors_without_importing_torch():
    logits, keep, labels = _arrays()
    inputs = normalise(_FakeTensor(logits), _FakeTensor(keep), _FakeTensor(labels))
    np.testing.assert_array_equal(inputs.logits, logits)
    with pytest.raises(UserError, match=r"cuda: pass logits\.detach\(\)\.cpu\(\)\.numpy\(\)"):
        as_numpy(_FakeTensor(logits, "cuda"), "logits")


def test_real_torch_tensors():
    torch = pytest.importorskip("torch", reason="torch is an optional extra")
    logits, keep, labels = _arrays()
    tensor = torch.tensor(logits, requires_grad=True)
    inputs = normalise(tensor * 1, torch.tensor(keep), torch.tensor(labels))
    np.testing.assert_allclose(inputs.logits, logits)


def test_inputs_never_import_torch():
    assert "torch" not in sys.modules or pytest.skip("torch was imported by another test")
    normalise(*_arrays())
    assert "torch" not in sys.modules


def test_logit_scale_refuses_the_ambiguous_square_layout():
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(N, N, C)), rng.integers(0, C, N)
    with pytest.raises(UserError, match="ambiguous"):
        logit_scale(logits, labels)
    per_model = logit_scale(logits, labels[None, :])  # [M, N, C]: label n for column n
    per_view = logit_scale(logits, labels[:, None])  # [N, V, C]: label n for row n
    np.testing.assert_allclose(per_model[2, 3], logit_scale(logits[2, 3], labels[3]), rtol=1e-6)
    np.testing.assert_allclose(per_view[2, 3], logit_scale(logits[2, 3], labels[2]), rtol=1e-6)
    with pytest.raises(UserError, match=r"pass labels\[None, :\]"):
        logit_scale(logits[:3], labels)  # [M, N, C] with M != N: the old rule cannot align labels [N]
