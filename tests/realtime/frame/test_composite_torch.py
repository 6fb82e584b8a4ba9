"""The torch composite equals the OpenCV one on the CPU device (real faces)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from realtime.faces.align import invert_affine, warp_face
from realtime.faces.detect import DlibDetector
from realtime.frame.composite import paste_face
from realtime.frame.composite_torch import (
    crop_mask_torch,
    paste_face_torch,
    sample_affine,
    warp_face_torch,
)
from realtime.types import Detection
from tests.dlib_extra import require_dlib


@pytest.fixture(scope="module")
def t1_faces(t1_bgr: np.ndarray) -> list[Detection]:
    require_dlib()
    faces = DlibDetector(detect_width=640).detect(t1_bgr)
    assert len(faces) == 6
    return faces


@pytest.fixture(autouse=True)
def _few_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)  # the rest of the run keeps its own setting


@pytest.mark.parametrize("family", ["simswap-224", "inswapper-128", "simswap-512"])
def test_warp_face_torch_equals_opencv(t1_bgr: np.ndarray, t1_faces: list[Detection],
                                       family: str) -> None:
    frame_t = torch.from_numpy(t1_bgr)
    for face in t1_faces:
        aligned = warp_face(t1_bgr, face.landmarks, family)
        crop_t = warp_face_torch(frame_t, aligned.matrix, aligned.size)
        assert crop_t.dtype == torch.uint8 and tuple(crop_t.shape) == aligned.crop.shape
        diff = np.abs(crop_t.numpy().astype(int) - aligned.crop)
        assert diff.max() <= 1, family


def test_warp_face_torch_at_frame_border(t1_bgr: np.ndarray, t1_faces: list[Detection]) -> None:
    face = t1_faces[0]
    cx = int(face.landmarks[2, 0])
    frame = np.ascontiguousarray(t1_bgr[40:, cx:])
    landmarks = face.landmarks - np.array([cx, 40], np.float32)
    aligned = warp_face(frame, landmarks, "simswap-224")
    crop_t = warp_face_torch(torch.from_numpy(frame), aligned.matrix, 224)
    assert np.abs(crop_t.numpy().astype(int) - aligned.crop).max() <= 1
    # black padding past the frame edge (as the official code), on the device too
    assert (crop_t.numpy().reshape(-1, 3).max(axis=1) == 0).mean() > 0.1
    far = aligned.matrix.copy()
    far[:, 2] += 5000.0
    assert warp_face_torch(torch.from_numpy(frame), far, 64).max() == 0


@pytest.mark.parametrize("family", ["simswap-224", "inswapper-128", "simswap-512"])
@pytest.mark.parametrize("color", [False, True])
def test_paste_face_torch_equals_opencv(t1_bgr: np.ndarray, t1_faces: list[Detection],
                                        family: str, color: bool) -> None:
    aligned = [warp_face(t1_bgr, f.landmarks, family) for f in t1_faces]
    expected = t1_bgr.copy()
    got = torch.from_numpy(t1_bgr.copy())
    for i, target in enumerate(aligned):
        # each face receives its neighbour's crop: different colours and content
        swapped = aligned[(i + 1) % len(aligned)].crop
        paste_face(expected, swapped, target.matrix, color_match=color)
        paste_face_torch(got, torch.from_numpy(swapped), target.matrix, color_match=color)
    assert np.any(expected != t1_bgr)
    diff = np.abs(got.numpy().astype(int) - expected)
    assert diff.max() <= 1


def test_paste_face_torch_border_and_offframe(t1_bgr: np.ndarray,
                                              t1_faces: list[Detection]) -> None:
    face = t1_faces[0]
    cx = int(face.landmarks[2, 0])
    frame = np.ascontiguousarray(t1_bgr[:, cx:])
    landmarks = face.landmarks - np.array([cx, 0], np.float32)
    aligned = warp_face(frame, landmarks, "simswap-224")
    other = warp_face(t1_bgr, t1_faces[1].landmarks, "simswap-224").crop
    expected = frame.copy()
    got = torch.from_numpy(frame.copy())
    paste_face(expected, other, aligned.matrix)
    paste_face_torch(got, torch.from_numpy(other), aligned.matrix)
    assert np.abs(got.numpy().astype(int) - expected).max() <= 1
    far = aligned.matrix.copy()
    far[0, 2] += 5000
    before = got.clone()
    paste_face_torch(got, torch.from_numpy(other), far)
    assert torch.equal(got, before)


def test_sample_affine_borders() -> None:
    source = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)
    shift = np.array([[1.0, 0.0, -2.0], [0.0, 1.0, 0.0]])  # two pixels left of the image
    replicate = sample_affine(source, shift, (3, 4), border="replicate")
    constant = sample_affine(source, shift, (3, 4), border="constant")
    np.testing.assert_array_equal(replicate[0, :, 0].numpy(), [0, 4, 8])
    np.testing.assert_array_equal(constant[0, :, :2].numpy(), np.zeros((3, 2)))
    np.testing.assert_array_equal(constant[0, :, 2:].numpy(), source[0, :, :2].numpy())
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(sample_affine(source, half, (1, 3))[0, 0].numpy(),
                               [0.5, 1.5, 2.5])
    with pytest.raises(ValueError, match="border"):
        sample_affine(source, half, (1, 3), border="wrap")


def test_sample_affine_reflects_as_opencv() -> None:
    """``border="reflect"`` is BORDER_REFLECT (fedcba|abcdef) at any distance, also past a
    whole image width (the FFHQ view of a small crop samples far outside it)."""
    import cv2

    image = np.random.default_rng(3).integers(0, 256, (20, 16, 3), dtype=np.uint8)
    forward = np.array([[0.45, 0.08, 14.3], [-0.08, 0.45, 17.9]])  # crop → larger view
    expected = cv2.warpAffine(image, forward, (64, 64), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)
    source = torch.from_numpy(image).permute(2, 0, 1)
    got = sample_affine(source, invert_affine(forward), (64, 64), border="reflect")
    got_u8 = torch.floor(got + 0.5).clamp(0, 255).permute(1, 2, 0).numpy().astype(int)
    assert np.abs(got_u8 - expected.astype(int)).max() <= 1


def test_bad_inputs_and_mask_cache() -> None:
    frame = torch.zeros((100, 100, 3), dtype=torch.uint8)
    with pytest.raises(ValueError, match="uint8"):
        paste_face_torch(frame.float(), torch.zeros((64, 64, 3), dtype=torch.uint8),
                         np.eye(2, 3))
    with pytest.raises(ValueError, match=r"torch\.Tensor"):
        warp_face_torch(np.zeros((100, 100, 3), np.uint8), np.eye(2, 3), 64)  # type: ignore[arg-type]
    cpu = torch.device("cpu")
    assert crop_mask_torch(64, 0.08, cpu) is crop_mask_torch(64, 0.08, cpu)


def test_color_transfer_torch_matches_numpy_and_empty_mask() -> None:
    from realtime.frame.composite import color_transfer
    from realtime.frame.composite_torch import color_transfer_torch

    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (50, 3)).astype(np.float32)
    dst = (src * 0.7 + 30).astype(np.float32)
    weights = rng.random(50).astype(np.float32)
    gain, bias = color_transfer(src, dst, weights)
    gain_t, bias_t = color_transfer_torch(torch.from_numpy(src), torch.from_numpy(dst),
                                          torch.from_numpy(weights))
    np.testing.assert_allclose(gain_t.numpy(), gain, rtol=1e-9)
    np.testing.assert_allclose(bias_t.numpy(), bias, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gain, 0.7, atol=0.01)
    zero = torch.zeros(50)
    gain_0, bias_0 = color_transfer_torch(torch.from_numpy(src), torch.from_numpy(dst), zero)
    np.testing.assert_array_equal(gain_0.numpy(), np.ones(3))
    np.testing.assert_array_equal(bias_0.numpy(), np.zeros(3))


def test_warp_and_paste_never_wait_for_the_device(t1_bgr: np.ndarray,
                                                  t1_faces: list[Detection]) -> None:
    """Defect 3 (issue 12): each face's affine matrix was uploaded as a pageable tensor
    (``torch.as_tensor(array, device=...)``), three host synchronisations per face per
    frame on CUDA. The warp and the paste must not wait for the device at all."""
    from tests.cuda_copies import HostSyncCounter

    aligned = [warp_face(t1_bgr, f.landmarks, "simswap-224") for f in t1_faces]
    frame_t = torch.from_numpy(t1_bgr.copy())
    crops = [torch.from_numpy(a.crop) for a in aligned]  # crops already on the device
    for a, crop in zip(aligned, crops, strict=True):  # warm the per-size mask cache
        paste_face_torch(frame_t.clone(), crop, a.matrix)
    with HostSyncCounter() as syncs:
        for a, crop in zip(aligned, crops, strict=True):
            warped = warp_face_torch(frame_t, a.matrix, a.size)
            paste_face_torch(frame_t, crop, a.matrix)
            paste_face_torch(frame_t, warped, a.matrix, color_match=False)
    assert dict(syncs.calls) == {}


def test_the_sync_counter_sees_a_pageable_upload() -> None:
    """A control for the double: what main did per face is counted."""
    from tests.cuda_copies import HostSyncCounter

    matrix = np.eye(2, 3)
    with HostSyncCounter() as syncs:
        torch.as_tensor(np.asarray(matrix), device=torch.device("cpu"))
        host = torch.from_numpy(matrix)
        host.to("cpu")
        torch.ones(3).sum().item()
        host.numpy()  # a host tensor's memory: no wait
    assert syncs.count == 3, syncs.calls
