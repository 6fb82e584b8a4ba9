"""Cited by docs/performance.md, "Paste-back overhead vs insightface".

Per-face overhead of our align + region-only composite vs insightface's INSwapper.get.

Both sides run the SAME tiny ONNX model with inswapper_128's signature (target
[1,3,128,128], source [1,512], last initializer ``emap`` 512×512) on the SAME
frames and faces, one thread each, so the model work is identical and the
difference is alignment, pre/post-processing and paste-back.

Run from the repository root: ``python -m bench.bench_composite [--repeats N]``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from export.random_models import write_inswapper_like_onnx


def test_frames() -> dict[str, np.ndarray]:
    """t1.jpg (six people) cut to 16:9 and scaled to 1080p and 720p."""
    import importlib.util

    import cv2

    spec = importlib.util.find_spec("insightface")
    assert spec is not None and spec.origin is not None
    image = cv2.imread(str(Path(spec.origin).parent / "data" / "images" / "t1.jpg"))
    assert image is not None
    wide = image[40:760]  # 1280×720 band holding all six faces
    return {
        "1080p": cv2.resize(wide, (1920, 1080), interpolation=cv2.INTER_LINEAR),
        "720p": np.ascontiguousarray(wide),
    }


def timings_ms(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(timings_ms(fn, repeats))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    import contextlib
    import io

    import cv2
    import onnx
    import onnxruntime as ort
    from insightface.app.common import Face
    from insightface.model_zoo.inswapper import INSwapper
    from onnx import numpy_helper

    from realtime.faces.align import warp_face
    from realtime.faces.detect import DlibDetector
    from realtime.frame.composite import paste_face

    cv2.setNumThreads(1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # ORT warns that emap is unused; insightface reads it

    with tempfile.TemporaryDirectory() as folder:
        model_path = write_inswapper_like_onnx(Path(folder) / "inswapper_128.onnx")
        session = ort.InferenceSession(str(model_path), options,
                                       providers=["CPUExecutionProvider"])
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its input shape
            theirs = INSwapper(model_file=str(model_path), session=session)
        emap = numpy_helper.to_array(onnx.load(str(model_path)).graph.initializer[-1])
    names = [i.name for i in session.get_inputs()]
    out_name = session.get_outputs()[0].name

    rng = np.random.default_rng(1)
    embedding = rng.standard_normal(512).astype(np.float32)
    source_face = Face(embedding=embedding)
    latent = (source_face.normed_embedding.reshape(1, -1) @ emap).astype(np.float32)
    latent /= np.linalg.norm(latent)

    detector = DlibDetector(detect_width=640)
    print(f"{'frame':6} {'faces':>5} {'insightface ms':>15} {'ours ms':>8} {'model ms':>9} "
          f"{'their overhead':>15} {'our overhead':>13} {'ratio':>6}")
    for label, frame in test_frames().items():
        faces = detector.detect(frame)
        if not faces:
            raise RuntimeError(f"no face found in the {label} frame")
        blob_example = np.zeros((1, 3, 128, 128), np.float32)

        def run_model(b: np.ndarray = blob_example) -> object:
            return session.run([out_name], {names[0]: b, names[1]: latent})

        model_ms = median_ms(run_model, args.repeats * 2)
        theirs_ms: list[float] = []
        ours_ms: list[float] = []
        theirs_min: list[float] = []
        ours_min: list[float] = []
        for det in faces:
            target_face = Face(kps=det.landmarks.astype(np.float32))

            def run_theirs(f: np.ndarray = frame, t: Face = target_face) -> object:
                return theirs.get(f, t, source_face, paste_back=True)

            def run_ours(f: np.ndarray = frame, lm: np.ndarray = det.landmarks) -> object:
                aligned = warp_face(f, lm, "inswapper-128")
                blob = cv2.dnn.blobFromImage(aligned.crop, 1.0 / 255.0, (128, 128),
                                             (0, 0, 0), swapRB=True)
                pred = session.run([out_name], {names[0]: blob, names[1]: latent})[0]
                swapped = np.clip(pred[0].transpose(1, 2, 0) * 255.0, 0, 255).astype(np.uint8)
                # in place on the frame, as the pipeline does after one copy per frame
                paste_face(f, np.ascontiguousarray(swapped[:, :, ::-1]), aligned.matrix)
                return f

            t_runs = timings_ms(run_theirs, args.repeats)
            o_runs = timings_ms(functools.partial(run_ours, frame.copy()), args.repeats)
            theirs_ms.append(statistics.median(t_runs))
            ours_ms.append(statistics.median(o_runs))
            theirs_min.append(min(t_runs))
            ours_min.append(min(o_runs))
        copy_ms = median_ms(frame.copy, args.repeats)
        t_med = statistics.median(theirs_ms)
        o_med = statistics.median(ours_ms)
        t_over = t_med - model_ms
        o_over = o_med - model_ms
        print(f"{label:6} {len(faces):5d} {t_med:15.2f} {o_med:8.2f} {model_ms:9.2f} "
              f"{t_over:15.2f} {o_over:13.2f} {t_over / max(o_over, 1e-6):5.1f}x")
        best_t = statistics.median(theirs_min) - model_ms
        best_o = statistics.median(ours_min) - model_ms
        print(f"{'':6} fastest runs (less disturbed by other load): overhead "
              f"{best_t:.2f} vs {best_o:.2f} ms, ratio {best_t / max(best_o, 1e-6):.1f}x")
        print(f"{'':6} (one full-frame copy per frame, not per face, adds {copy_ms:.2f} ms; "
              f"with it per face the ratio is {t_over / (o_over + copy_ms):.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
