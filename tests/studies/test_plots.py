"""Zeros on the studies' log axes: drawn below chance and below every measured TPR, hollow, never as leakage."""

import numpy as np

from lira_jax.studies.plots import draw_zeros, mark_floor, pyplot, zero_floor


def test_the_floor_is_a_decade_below_chance_and_every_measured_value():
    assert zero_floor(1e-5, [0.0, 3e-5, np.nan, None]) == 1e-6
    assert zero_floor(1e-3, [2e-4, 0.01]) == 1e-5
    assert zero_floor(1e-3, []) == 1e-4


def test_zeros_are_hollow_markers_on_the_labelled_floor():
    plt = pyplot()
    figure, axes = plt.subplots()
    floor = zero_floor(1e-5, [0.0, 2e-4])
    mark_floor(axes, floor)
    draw_zeros(axes, [1, 2, 4], [0.0, 2e-4, 0.0], floor, "C0")
    (zeros,) = [line for line in axes.lines if line.get_marker() == "o"]
    np.testing.assert_array_equal(zeros.get_xdata(), [1, 4])
    assert (zeros.get_ydata() == floor).all() and floor < 1e-5  # below the chance line TPR = FPR = 1e-5
    assert zeros.get_markerfacecolor() == "white"
    assert any("TPR 0" in text.get_text() for text in axes.texts)
    plt.close(figure)
