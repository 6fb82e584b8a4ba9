"""Cited by docs/gpu-path.md, "Flow greys on the host".

The flow texture's grey crops, two ways side by side in one run: the host grey made from
the frame and the face's matrix (``motion.frame_greys``: warpAffine at crop size, grey,
INTER_AREA to 112 px) against the device grey it replaces (the crops' grey on the torch
device, stacked and downloaded in one ``.cpu()``). On this machine the "device" is torch's
CPU device, so the second figure is its compute plus a copy, not a GPU's download wait
(which it also costs on a GPU, and which the host grey removes): the figure shows what the
host grey costs the frame thread.

Method: t1.jpg (1280×886), its six faces' 5-point landmarks from dlib, SimSwap 224 crops;
200 repetitions each, alternating, one thread, median ms per frame for 1 and 6 faces.
Run: ``python -m bench.flow_greys``.
"""

from __future__ import annotations

import statistics
import time

import cv2
import numpy as np
import torch

from realtime.frame.motion import flow_grey, frame_greys
from realtime.frame.motion_torch import _grey
from realtime.frame.process_torch import TorchFrameProcessor


def main() -> None:
    from insightface.data import get_image

    from engines.torch import TorchEngine
    from realtime.config import Settings
    from realtime.faces.detect import DlibDetector
    from realtime.frame.swap import FaceSwapper
    from realtime.types import Face
    from tests.realtime.frame.test_process_torch import Shade, _specs

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    image = get_image("t1")
    faces = [Face(i, d) for i, d in enumerate(DlibDetector(detect_width=800).detect(image))]
    inputs, outputs = _specs(224)
    dev = TorchFrameProcessor(FaceSwapper("simswap-224", TorchEngine(Shade(), inputs, outputs)),
                              None, Settings(), device="cpu")
    for count in (1, len(faces)):
        aligned = dev.align(image, faces[:count])
        host, device = [], []
        for _ in range(200):
            t0 = time.perf_counter()
            frame_greys(image, aligned)
            host.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            stacked = _grey(torch.stack([a.crop_t for a in aligned])).cpu().numpy()
            [flow_grey(g) for g in stacked]
            device.append((time.perf_counter() - t0) * 1000)
        print(f"{count} face(s): host grey {statistics.median(host):.2f} ms, "
              f"device grey + download {statistics.median(device):.2f} ms (median of 200)")
    assert np.array_equal(frame_greys(image, aligned[:1])[0],
                          flow_grey(aligned[0].crop_t.numpy()))


if __name__ == "__main__":
    main()
