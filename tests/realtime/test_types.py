"""The boundary checks of ``realtime.types``: what an array must be to cross a stage."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.types import Detection, ValueTypeError, check_array


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_check_array_takes_every_float_dtype(dtype: type) -> None:
    check_array("box", np.zeros(4, dtype), (4,))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_, np.complex64, object])
def test_check_array_refuses_what_is_not_a_real_float(dtype: type) -> None:
    with pytest.raises(ValueTypeError, match="expected float"):
        check_array("box", np.zeros(4, dtype), (4,))


def test_check_array_refuses_a_wrong_shape_and_a_list() -> None:
    with pytest.raises(ValueTypeError, match=r"expected float \(5, 2\)"):
        check_array("landmarks", np.zeros((2, 5), np.float32), (5, 2))
    with pytest.raises(ValueTypeError, match="expected numpy array"):
        check_array("box", [0.0, 0.0, 1.0, 1.0], (4,))


def test_detection_with_integer_landmarks_fails_at_the_boundary() -> None:
    with pytest.raises(ValueTypeError, match=r"Detection\.landmarks"):
        Detection(np.zeros(4, np.float32), 0.9, np.zeros((5, 2), np.int64))
