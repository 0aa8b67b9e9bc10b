import numpy as np
import pytest

from cutout.metrics import boundary_f, dice
from trainer.evaluate import summarise


def square(size=20, lo=5, hi=15):
    m = np.zeros((size, size), np.uint8)
    m[lo:hi, lo:hi] = 255
    return m


def test_dice_of_identical_masks_is_one():
    assert dice(square(), square()) == 1.0


def test_dice_of_disjoint_masks_is_zero():
    a = np.zeros((4, 4), np.uint8); a[0, 0] = 255
    b = np.zeros((4, 4), np.uint8); b[3, 3] = 255
    assert dice(a, b) == 0.0


def test_dice_by_hand():
    a = np.zeros((1, 4), np.uint8); a[0, :2] = 255  # 2 px
    b = np.zeros((1, 4), np.uint8); b[0, 1:4] = 255  # 3 px, 1 shared
    assert dice(a, b) == pytest.approx(2 * 1 / 5)


def test_dice_and_the_confidence_signals_are_plain_python_numbers():
    """They go into SQL parameters and JSON: a numpy scalar there is written as 'np.float64(..)'
    (PostgreSQL then looks for a schema called np)."""
    from cutout.segmentation.confidence import confidence_signals

    a, b = square(), square(lo=6)
    assert type(dice(a, b)) is float
    prob = a.astype(np.float32) / 255
    signals = confidence_signals(prob, 0.5, a, b)
    assert all(type(v) in (float, int) for v in signals.values()), signals


def test_empty_masks():
    empty = np.zeros((5, 5), np.uint8)
    assert dice(empty, empty) == 1.0
    assert dice(empty, square(5, 1, 3)) == 0.0
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(empty, square()) == 0.0


def test_dice_accepts_probabilities_and_refuses_shape_mismatch():
    assert dice(square().astype(np.float32) / 255, square()) == 1.0
    with pytest.raises(ValueError):
        dice(square(20), square(21))


def test_boundary_f_tolerates_small_shifts_only():
    assert boundary_f(square(), square()) == 1.0
    assert boundary_f(square(40, 10, 30), square(40, 11, 31), tolerance=2) == 1.0
    assert boundary_f(square(40, 10, 30), square(40, 15, 35), tolerance=2) < 0.5


def test_summarise_reports_outliers_like_the_study():
    values = [0.99] * 20 + [0.5]
    s = summarise(values, ids=[str(i) for i in range(21)])
    assert s["n"] == 21 and s["median"] == 0.99
    assert s["n_outliers"] == 1 and s["worst"][0] == {"id": "20", "value": 0.5}
