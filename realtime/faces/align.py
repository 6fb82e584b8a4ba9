"""Alignment templates and similarity transforms (pure functions).

Every model family crops faces by mapping the five detected landmarks (SCRFD
order: left eye, right eye, nose tip, left mouth corner, right mouth corner,
image-left first) onto a fixed template with a least-squares similarity
transform (rotation, uniform scale, translation). The template values are the
published ones (SPEC §3–4).

Matrices are float64 (2, 3) and map *frame* pixels to *crop* pixels, in OpenCV's
convention (pixel centres at integer coordinates), so
``cv2.warpAffine(frame, matrix, (size, size))`` produces the crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from realtime.types import AlignedFace, ValueTypeError, check_array, check_image

# SimSwap 224: five pose templates at 112 px (scaled ×2 when used), in the order
# left profile, left, frontal, right, right profile.
SIMSWAP_224_TEMPLATES: np.ndarray = np.array(
    [
        [[51.642, 50.115], [57.617, 49.990], [35.740, 69.007], [51.157, 89.050],
         [57.025, 89.702]],
        [[45.031, 50.118], [65.568, 50.872], [39.677, 68.111], [45.177, 86.190],
         [64.246, 86.758]],
        [[39.730, 51.138], [72.270, 51.138], [56.000, 68.493], [42.463, 87.010],
         [69.537, 87.010]],
        [[46.845, 50.872], [67.382, 50.118], [72.737, 68.111], [48.167, 86.758],
         [67.236, 86.190]],
        [[54.796, 49.990], [60.771, 50.115], [76.673, 69.007], [55.388, 89.702],
         [61.257, 89.050]],
    ],
    dtype=np.float32,
)
SIMSWAP_224_TEMPLATES.setflags(write=False)

# SimSwap 512: the FFHQ template at 512 px (source and target alike).
FFHQ_512_TEMPLATE: np.ndarray = np.array(
    [[192.98138, 239.94708], [318.90277, 240.19360], [256.63416, 314.01935],
     [201.26117, 371.41043], [313.08905, 371.15118]],
    dtype=np.float32,
)
FFHQ_512_TEMPLATE.setflags(write=False)

# insightface ArcFace template at 112 px (w600k_r50 and the SimSwap encoder's 112 crop).
ARCFACE_112_TEMPLATE: np.ndarray = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
ARCFACE_112_TEMPLATE.setflags(write=False)

# inswapper_128 uses the ArcFace template shifted +8 px in x, not scaled.
INSWAPPER_128_TEMPLATE: np.ndarray = ARCFACE_112_TEMPLATE + np.array([8.0, 0.0], np.float32)
INSWAPPER_128_TEMPLATE.setflags(write=False)

CROP_SIZES: dict[str, int] = {
    "simswap-224": 224,
    "simswap-512": 512,
    "inswapper-128": 128,
    "arcface-112": 112,
}


class AlignmentError(ValueError):
    """Landmarks or a family name that cannot be aligned."""


def family_templates(family: str) -> np.ndarray:
    """The candidate templates of ``family`` at its crop size, float64 (K, 5, 2)."""
    if family == "simswap-224":
        # The official code defines the pose templates at 112 px and doubles them.
        return SIMSWAP_224_TEMPLATES.astype(np.float64) * 2.0
    if family == "simswap-512":
        return FFHQ_512_TEMPLATE.astype(np.float64)[None]
    if family == "inswapper-128":
        return INSWAPPER_128_TEMPLATE.astype(np.float64)[None]
    if family == "arcface-112":
        return ARCFACE_112_TEMPLATE.astype(np.float64)[None]
    raise AlignmentError(
        f"unknown alignment family {family!r}: expected one of {sorted(CROP_SIZES)}"
    )


def _check_points(name: str, points: np.ndarray) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 2:
        raise AlignmentError(f"{name}: expected (N>=2, 2) points, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise AlignmentError(f"{name}: points must be finite, got {array.tolist()}")
    return array


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform taking ``src`` points onto ``dst`` points.

    Umeyama's closed form: centre both sets, take the SVD of their covariance
    for the rotation (with the sign fix that forbids a reflection), the scale
    from the singular values over the source variance, then the translation.
    Returns float64 (2, 3).
    """
    dst_pts = _check_points("dst", dst)
    return estimate_similarities(src, dst_pts[None])[0]


def estimate_similarities(src: np.ndarray, dsts: np.ndarray) -> np.ndarray:
    """``estimate_similarity`` of one ``src`` onto each of K ``dsts`` (K, N, 2) at once
    (one batched SVD instead of K calls); returns float64 (K, 2, 3)."""
    src_pts = _check_points("src", src)
    targets = np.asarray(dsts, dtype=np.float64)
    if targets.ndim != 3 or targets.shape[1:] != src_pts.shape:
        raise AlignmentError(f"src and dst differ: got {src_pts.shape} and {targets.shape[1:]}")
    if not np.all(np.isfinite(targets)):
        raise AlignmentError("dst: points must be finite")
    n = src_pts.shape[0]
    src_mean = src_pts.mean(axis=0)
    src_c = src_pts - src_mean
    src_var = float((src_c**2).sum() / n)
    if src_var < 1e-12:
        raise AlignmentError("src points are all the same point: no transform is defined")
    dst_mean = targets.mean(axis=1)  # (K, 2)
    dst_c = targets - dst_mean[:, None, :]
    cov = np.einsum("kni,nj->kij", dst_c, src_c) / n  # (K, 2, 2)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.ones((len(targets), 2))
    sign[np.linalg.det(u) * np.linalg.det(vt) < 0, 1] = -1.0
    rotation = u @ (sign[:, :, None] * vt)
    scale = (sigma * sign).sum(axis=1) / src_var  # (K,)
    matrices = np.empty((len(targets), 2, 3), dtype=np.float64)
    matrices[:, :, :2] = scale[:, None, None] * rotation
    matrices[:, :, 2] = dst_mean - np.einsum("kij,j->ki", matrices[:, :, :2], src_mean)
    return matrices


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (N, 2) points; returns float64 (N, 2)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3):
        raise AlignmentError(f"matrix: expected (2, 3), got {m.shape}")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ m[:, :2].T + m[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine as float64 (2, 3); raises on a singular matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3):
        raise AlignmentError(f"matrix: expected (2, 3), got {m.shape}")
    det = float(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0])
    if abs(det) < 1e-12:
        raise AlignmentError(f"matrix is singular (det={det:g}): cannot invert")
    # Written out in the same order of operations as OpenCV's own inversion inside
    # warpAffine, so the torch warp samples at bit-identical coordinates.
    d = 1.0 / det
    a11, a12 = m[1, 1] * d, -m[0, 1] * d
    a21, a22 = -m[1, 0] * d, m[0, 0] * d
    b1 = -a11 * m[0, 2] - a12 * m[1, 2]
    b2 = -a21 * m[0, 2] - a22 * m[1, 2]
    return np.array([[a11, a12, b1], [a21, a22, b2]], dtype=np.float64)


def residual(matrix: np.ndarray, src: np.ndarray, dst: np.ndarray) -> float:
    """Sum of point distances after mapping ``src`` (the official selection criterion)."""
    diff = transform_points(matrix, src) - np.asarray(dst, dtype=np.float64)
    return float(np.sqrt((diff**2).sum(axis=1)).sum())


def align_matrix(landmarks: np.ndarray, family: str) -> np.ndarray:
    """Frame→crop matrix for ``family``: the best-residual template's similarity."""
    pts = _check_points("landmarks", landmarks)
    if pts.shape != (5, 2):
        raise AlignmentError(f"landmarks: expected (5, 2), got {pts.shape}")
    templates = family_templates(family)
    matrices = estimate_similarities(pts, templates)
    mapped = np.einsum("kij,nj->kni", matrices[:, :, :2], pts) + matrices[:, None, :, 2]
    errors = np.sqrt(((mapped - templates) ** 2).sum(axis=2)).sum(axis=1)
    return matrices[int(np.argmin(errors))]


def warp_face(image: np.ndarray, landmarks: np.ndarray, family: str) -> AlignedFace:
    """Crop the face at ``landmarks`` onto ``family``'s template.

    Bilinear interpolation; pixels outside the frame are black (``BORDER_CONSTANT``,
    0), as in the official SimSwap and insightface code: the generators and ArcFace were
    trained on crops padded that way (a tight headshot as a source photo is the common
    case), and replicated edges give them streaks they never saw. The paste never
    writes outside the frame, so the padding does not reach the output's edge pixels.
    """
    check_image("image", image)
    if landmarks.shape != (5, 2):
        raise ValueTypeError(f"landmarks: expected (5, 2), got {landmarks.shape}")
    size = CROP_SIZES.get(family)
    if size is None:
        raise AlignmentError(
            f"unknown alignment family {family!r}: expected one of {sorted(CROP_SIZES)}"
        )
    matrix = align_matrix(landmarks, family)
    check_array("matrix", matrix, (2, 3))
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return AlignedFace(crop=crop, matrix=matrix, size=size)
