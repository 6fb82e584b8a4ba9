"""``bench --quality``: SimSwap's paper metrics over every source × target pair.

For each pair the largest target face is swapped (the real processor: align, swap,
composite), then measured on the composited output: identity cosine to every source
(ID retrieval top-1: is the nearest source the one worn?), pose error and expression
error (proxies in :mod:`realtime.faces.quality`), and the swap's throughput. The report
is JSON plus an HTML page with a thumbnail grid (images inline as base64 PNG).
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realtime.faces.quality import (
    cosine,
    expression_error,
    pose_error,
)
from realtime.types import Detection, Face

RANDOM_WEIGHTS_NOTE = ("weights not verified against an official sha256 (random-weight models "
                       "from export.random_models look like this): the numbers are meaningless")
THUMB = 96


@dataclass(frozen=True)
class PairResult:
    source: str
    target: str
    identity: float | None       # cosine(output, worn source)
    identity_before: float | None
    retrieved: str | None        # the nearest source of the output
    pose_error: float | None     # degrees
    expression_error: float | None
    swap_ms: float
    note: str = ""


def load_targets(path: Path, *, max_frames: int = 8) -> list[tuple[str, np.ndarray]]:
    """Images of a folder, one image, or up to ``max_frames`` evenly sampled video frames."""
    from realtime.faces.sources import IMAGE_SUFFIXES, image_folder, read_image

    if path.is_dir():
        return [(p.name, read_image(p, "target")) for p in image_folder(path)]
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [(path.name, read_image(path, "target"))]
    from realtime.io.video import probe_video, read_frames

    count = probe_video(path).frame_count or max_frames
    keep = set(np.linspace(0, max(count - 1, 0), max_frames).astype(int).tolist())
    return [(f"{path.name}#{i}", frame) for i, frame in enumerate(read_frames(path))
            if i in keep]


def _largest(detections: Sequence[Detection]) -> Detection | None:
    return max(detections, key=lambda d: d.area) if detections else None


def evaluate(processor: Any, detect: Callable[[np.ndarray], list[Detection]],
             identify: Callable[[np.ndarray, np.ndarray], np.ndarray],
             sources: Sequence[Any], source_vectors: np.ndarray,
             targets: Sequence[tuple[str, np.ndarray]],
             progress: Callable[[], None] | None = None,
             ) -> tuple[list[PairResult], dict[tuple[int, int], np.ndarray]]:
    """Swap every source into every target; returns the per-pair results and the
    output images by (source index, target index).

    ``identify(image, landmarks)`` gives the measuring encoder's recognition vector,
    ``source_vectors`` each source's vector from the same encoder (rows).
    """
    results: list[PairResult] = []
    outputs: dict[tuple[int, int], np.ndarray] = {}
    for ti, (tname, timage) in enumerate(targets):
        target = _largest(detect(timage))
        for si, source in enumerate(sources):
            if target is None:
                results.append(PairResult(source.name, tname, None, None, None, None, None,
                                          0.0, "no face in the target"))
                outputs[(si, ti)] = timage
                if progress:
                    progress()
                continue
            t0 = time.perf_counter()
            out, _ = processor.process(timage, [Face(0, target)], source)
            swap_ms = (time.perf_counter() - t0) * 1000.0
            outputs[(si, ti)] = out
            before = cosine(identify(timage, target.landmarks), source_vectors[si])
            found = _largest(detect(out))
            if found is None:
                results.append(PairResult(source.name, tname, None, before, None, None, None,
                                          swap_ms, "no face found in the output"))
            else:
                vector = identify(out, found.landmarks)
                sims = source_vectors @ vector
                size = (out.shape[1], out.shape[0])
                results.append(PairResult(
                    source.name, tname, float(sims[si]), before,
                    sources[int(np.argmax(sims))].name,
                    pose_error(target.landmarks, found.landmarks, size),
                    expression_error(target.landmarks, found.landmarks), swap_ms))
            if progress:
                progress()
    return results, outputs


def summarize(results: Sequence[PairResult], source_names: Sequence[str],
              source_vectors: np.ndarray) -> dict[str, Any]:
    """The paper's table: ID retrieval top-1, mean identity cosine, pose and expression
    error, plus throughput; and how well the encoder separates the sources at all."""
    measured = [r for r in results if r.identity is not None]
    summary: dict[str, Any] = {"pairs": len(results), "measured": len(measured)}
    if measured:
        summary["id_retrieval_top1"] = float(np.mean([r.retrieved == r.source
                                                      for r in measured]))
        summary["identity_cosine_mean"] = float(np.mean([r.identity for r in measured]))
        befores = [r.identity_before for r in measured if r.identity_before is not None]
        summary["identity_before_mean"] = float(np.mean(befores)) if befores else None
        summary["pose_error_deg_mean"] = float(np.mean([r.pose_error for r in measured]))
        summary["expression_error_mean"] = float(np.mean([r.expression_error
                                                          for r in measured]))
    swaps = [r.swap_ms for r in results if r.swap_ms > 0]
    if swaps:
        summary["swap_ms_median"] = float(np.median(swaps))
        summary["swaps_per_s"] = 1000.0 / float(np.mean(swaps))
    if len(source_vectors) > 1:
        sims = source_vectors @ source_vectors.T
        off = sims[~np.eye(len(sims), dtype=bool)]
        # an encoder that cannot tell the sources apart makes every number above moot
        summary["source_cross_cosine_mean"] = float(off.mean())
    return summary


def _png_data(image: np.ndarray, size: int = THUMB) -> str:
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))),
                       interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", small)
    if not ok:
        raise ValueError("could not encode a thumbnail")
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def write_html(path: Path, report: dict[str, Any], source_images: Sequence[np.ndarray],
               target_images: Sequence[np.ndarray],
               outputs: dict[tuple[int, int], np.ndarray]) -> None:
    """A grid: sources down, targets across, each cell the output and its numbers."""
    s = report["summary"]
    heads = [f"<th><img src={_png_data(t)!r}><br>{html.escape(n)}</th>"
             for t, n in zip(target_images, report["targets"], strict=True)]
    rows = ["<tr><th></th>" + "".join(heads) + "</tr>"]
    by_pair = {(r["source"], r["target"]): r for r in report["pairs"]}
    for si, (simage, sname) in enumerate(zip(source_images, report["sources"], strict=True)):
        cells = []
        for ti, tname in enumerate(report["targets"]):
            r = by_pair[(sname, tname)]
            ok = r["retrieved"] == sname
            note = " " + html.escape(r["note"]) if r["note"] else ""
            identity, before = _fmt(r["identity"], ".2f"), _fmt(r["identity_before"], ".2f")
            pose, expr = _fmt(r["pose_error"], ".1f"), _fmt(r["expression_error"], ".3f")
            cells.append(
                f"<td><img src={_png_data(outputs[(si, ti)])!r}><br>"
                f"id {identity} (was {before}) {'&#10003;' if ok else '&#10007;'}<br>"
                f"pose {pose}&deg; expr {expr}{note}</td>")
        rows.append(f"<tr><th><img src={_png_data(simage)!r}><br>{html.escape(sname)}</th>"
                    f"{''.join(cells)}</tr>")
    warning = "".join(f"<p class=warn>{html.escape(w)}</p>" for w in report["warnings"])
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                    for k, v in s.items())
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>swapcam quality</title><style>"
        "body{font-family:sans-serif}td,th{padding:4px;text-align:center;font-size:12px}"
        ".warn{color:#b00;font-weight:bold}</style>"
        f"<h1>swapcam bench --quality</h1><p>{html.escape(report['model_note'])}; identity "
        f"measured with {html.escape(report['encoder'])}</p>{warning}"
        f"<table border=1>{table}</table><p>{html.escape(report['proxies'])}</p>"
        f"<table border=1>{''.join(rows)}</table>", encoding="utf-8")


def pair_dicts(results: Sequence[PairResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]
