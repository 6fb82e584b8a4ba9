"""The device processor with identity strength and the face enhancer equals the host one."""

from __future__ import annotations

import numpy as np
import torch

from engines.torch import TorchEngine
from realtime.config import Settings
from realtime.frame.enhance import FaceEnhancer, LazyEnhancer
from realtime.frame.process import FrameProcessor
from realtime.frame.process_torch import TorchFrameProcessor
from realtime.frame.swap import FaceSwapper
from realtime.types import Detection, Face
from tests.realtime.frame.test_enhance import T1_FACE, IdentityGfpgan
from tests.realtime.frame.test_process_torch import VECTOR, Shade, _specs
from tests.realtime.frame.test_strength import _inswapper_encoder


def test_device_processor_steers_and_enhances_like_the_host(t1_bgr: np.ndarray) -> None:
    settings = Settings(mask="box", identity_strength=1.5, enhance="gfpgan",
                        enhance_blend=0.8)
    inputs, outputs = _specs(128)
    module = Shade()
    encoder, _ = _inswapper_encoder()
    engines = [IdentityGfpgan(), IdentityGfpgan()]
    host = FrameProcessor(FaceSwapper("inswapper-128", TorchEngine(module, inputs, outputs)),
                          encoder, settings,
                          enhancer=LazyEnhancer.of(FaceEnhancer(engines[0])))
    dev = TorchFrameProcessor(
        FaceSwapper("inswapper-128", TorchEngine(module, inputs, outputs, device="cpu")),
        encoder, settings, enhancer=LazyEnhancer.of(FaceEnhancer(engines[1])))
    faces = [Face(0, Detection(np.array([470, 260, 570, 380], np.float32), 0.9, T1_FACE))]
    with torch.inference_mode():
        out_host, _ = host.process(t1_bgr, faces, VECTOR)
        out_dev, _ = dev.process(t1_bgr, faces, VECTOR)
    assert len(engines[0].calls) == 1 and len(engines[1].calls) == 1
    np.testing.assert_allclose(engines[0].calls[0], engines[1].calls[0], atol=2 / 255)
    diff = np.abs(out_host.astype(int) - out_dev.astype(int))
    assert np.any(out_host != t1_bgr) and diff.max() <= 3, diff.max()
