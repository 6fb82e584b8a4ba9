"""FP16 conversion: what stays FP32, graph validity, and measured drift on real face crops."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto

from bench import bench_fp16 as bench
from export import fp16

SIZE = 128


@pytest.fixture(scope="module", autouse=True)
def _few_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)  # the rest of the run keeps its own setting


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return bench.make_tiny(0)


@pytest.fixture(scope="module")
def tiny_large() -> torch.nn.Module:
    return bench.make_tiny(0, large=True)


@pytest.fixture(scope="module")
def tiny_onnx(tiny: torch.nn.Module) -> onnx.ModelProto:
    return bench.export_onnx(tiny, SIZE)


@pytest.fixture(scope="module")
def tiny_large_onnx(tiny_large: torch.nn.Module) -> onnx.ModelProto:
    return bench.export_onnx(tiny_large, SIZE)


@pytest.fixture(scope="module")
def mixed(tiny_onnx: onnx.ModelProto) -> onnx.ModelProto:
    return fp16.convert_to_fp16(tiny_onnx, "mixed")


def _feeds(crop: np.ndarray) -> dict[str, np.ndarray]:
    source = np.random.default_rng(1).standard_normal((1, 512)).astype(np.float32)
    return {"target": crop, "source": source / np.linalg.norm(source)}


def test_every_instance_norm_and_its_style_ops_stay_fp32(
        tiny_onnx: onnx.ModelProto, mixed: onnx.ModelProto) -> None:
    precisions = fp16.node_precisions(mixed)
    norms = [n for n in mixed.graph.node if n.op_type == "InstanceNormalization"]
    assert len(norms) == fp16.count_ops(tiny_onnx, ["InstanceNormalization"]) == 4
    consumers = {name: [n for n in mixed.graph.node if name in n.input]
                 for norm in norms for name in norm.output}
    for norm in norms:
        assert precisions[norm.name] == TensorProto.FLOAT, norm.name
        # its data input is an explicit Cast to FP32 from the FP16 conv before it
        producer = next(n for n in mixed.graph.node if norm.input[0] in n.output)
        assert producer.op_type == "Cast", (norm.name, producer.op_type)
        style_mul = [c for c in consumers[norm.output[0]] if c.op_type == "Mul"]
        assert style_mul and all(precisions[c.name] == TensorProto.FLOAT for c in style_mul)
        style_add = [c for m in style_mul for c in mixed.graph.node
                     if m.output[0] in c.input and c.op_type == "Add"]
        assert style_add and all(precisions[c.name] == TensorProto.FLOAT for c in style_add)
    convs = [n for n in mixed.graph.node if n.op_type == "Conv"]
    assert convs and all(precisions[c.name] == TensorProto.FLOAT16 for c in convs)
    conv_weights = {c.input[1] for c in convs}
    inits = {i.name: i.data_type for i in mixed.graph.initializer}
    assert all(inits[w] == TensorProto.FLOAT16 for w in conv_weights)


def test_graph_io_stays_fp32_and_checker_passes(mixed: onnx.ModelProto) -> None:
    onnx.checker.check_model(mixed, full_check=True)
    for info in [*mixed.graph.input, *mixed.graph.output]:
        assert info.type.tensor_type.elem_type == TensorProto.FLOAT, info.name
    assert [i.name for i in mixed.graph.input] == ["target", "source"]
    assert [o.name for o in mixed.graph.output] == ["output"]


def test_all_mode_converts_instance_norm_too(tiny_onnx: onnx.ModelProto) -> None:
    all16 = fp16.convert_to_fp16(tiny_onnx, "all")
    precisions = fp16.node_precisions(all16)
    norms = [n.name for n in all16.graph.node if n.op_type == "InstanceNormalization"]
    assert norms and all(precisions[n] == TensorProto.FLOAT16 for n in norms)
    assert fp16.fp32_node_names(tiny_onnx, "all") == set()


def test_conversion_rejects_fp16_input_and_bad_mode(mixed: onnx.ModelProto,
                                                    tiny_onnx: onnx.ModelProto) -> None:
    half_io = onnx.ModelProto.FromString(mixed.SerializeToString())
    half_io.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    with pytest.raises(fp16.Fp16ConversionError, match="expected an FP32 graph"):
        fp16.convert_to_fp16(half_io)
    with pytest.raises(fp16.Fp16ConversionError, match="expected 'mixed' or 'all'"):
        fp16.fp32_node_names(tiny_onnx, "half")  # type: ignore[arg-type]


def test_mixed_graph_runs_in_onnxruntime_close_to_fp32(
        tiny_onnx: onnx.ModelProto, mixed: onnx.ModelProto, astronaut_bgr: np.ndarray,
        grace_hopper_bgr: np.ndarray) -> None:
    # Bound: FP16 has an 11-bit significand (relative rounding 2^-11 ≈ 4.9e-4 per op); through
    # ~10 layers with renormalisation that compounds to a few 1e-3 on a [0,1] output, i.e.
    # under one 8-bit grey level (1/255 ≈ 3.9e-3) — invisible after quantisation to uint8.
    for crop in bench.face_crops(SIZE):
        feeds = _feeds(crop)
        reference = fp16.run_onnx(tiny_onnx, feeds)
        out = fp16.run_onnx(mixed, feeds)
        assert out.dtype == np.float32 and out.shape == reference.shape
        assert fp16.max_abs_error(reference, out) < 1 / 255
        assert fp16.psnr(reference, out) > 50.0
        assert fp16.max_abs_error(reference, out) > 0.0  # it really computed in FP16


def test_crops_are_the_real_faces(astronaut_bgr: np.ndarray) -> None:
    crop = bench.face_crops(SIZE)[0]
    assert crop.shape == (1, 3, SIZE, SIZE) and 0.0 <= crop.min() < crop.max() <= 1.0
    # the crop is the astronaut fixture's pixels, not a synthetic pattern
    import cv2

    expected = cv2.resize(astronaut_bgr[20:260, 120:360, ::-1], (SIZE, SIZE),
                          interpolation=cv2.INTER_AREA).transpose(2, 0, 1) / 255.0
    assert np.abs(crop[0] - expected).max() < 1e-6


def test_random_generator_drift_is_small_for_both(tiny: torch.nn.Module) -> None:
    rows = {r.variant: r for r in bench.measure("tiny", tiny, SIZE)}
    assert rows["all-fp16"].peak_norm_input < 256  # no overflow possible here
    for variant in ("all-fp16", "mixed"):
        assert rows[variant].finite
        assert rows[variant].max_abs < 1 / 255, (variant, rows[variant])
        assert rows[variant].psnr_db > 50.0


def test_large_activations_break_all_fp16_but_not_mixed(
        tiny_large: torch.nn.Module, tiny_large_onnx: onnx.ModelProto) -> None:
    rows = {r.variant: r for r in bench.measure("large", tiny_large, SIZE,
                                                model32=tiny_large_onnx)}
    assert rows["all-fp16"].peak_norm_input > 256  # (x - mean)² exceeds 65504
    bad = rows["all-fp16"]
    assert not bad.finite or bad.max_abs > 0.1, bad
    for variant in ("mixed", "mixed ONNX/ORT"):
        good = rows[variant]
        assert good.finite and good.max_abs < 1 / 255 and good.psnr_db > 50.0, good
    table = bench.format_table(list(rows.values()))
    assert "all-fp16" in table and "NO" in table


def test_explicit_instance_norm_matches_torch_in_fp32() -> None:
    x = torch.randn(2, 4, 8, 8) * 3 + 1
    ours = bench.ExplicitInstanceNorm(1e-8, torch.float32)(x)
    theirs = torch.nn.functional.instance_norm(x, eps=1e-8)
    assert torch.allclose(ours, theirs, atol=1e-5)
    # one spike of 1000: (x - mean)² overflows FP16 (max 65504), the variance becomes inf
    # and every output 0; in FP32 the spike normalises to sqrt(15)
    big = torch.full((1, 1, 4, 4), 0.0)
    big[..., 0, 0] = 1000.0
    full = bench.ExplicitInstanceNorm(1e-8, torch.float32)(big)
    assert float(full[0, 0, 0, 0]) == pytest.approx(15 ** 0.5, rel=1e-5)
    half = bench.ExplicitInstanceNorm(1e-8, torch.float16)(big.half())
    assert torch.isfinite(half).all() and float(half.abs().max()) == 0.0


def test_psnr_and_error_flag_non_finite() -> None:
    a = np.zeros((2, 2), np.float32)
    b = a.copy()
    b[0, 0] = np.nan
    assert fp16.max_abs_error(a, b) == float("inf")
    assert np.isnan(fp16.psnr(a, b))
    assert fp16.psnr(a, a) == float("inf")
    assert fp16.psnr(a, a + 0.1) == pytest.approx(20.0)


@pytest.mark.slow
def test_real_simswap_224_architecture() -> None:
    """The real 224 generator (export/simswap.py), random weights, made large-activation:
    one export and one real face (≈1 min on one core)."""
    model = bench.make_real(0, large=True)
    model32 = bench.export_onnx(model, 224)
    mixed224 = fp16.convert_to_fp16(model32, "mixed")
    norms = [n.name for n in mixed224.graph.node if n.op_type == "InstanceNormalization"]
    assert len(norms) == 18  # 9 blocks × 2
    precisions = fp16.node_precisions(mixed224)
    assert all(precisions[n] == TensorProto.FLOAT for n in norms)
    rows = {r.variant: r for r in bench.measure("simswap-224", model, 224, model32=model32,
                                                crops=1, mixed_onnx=mixed224)}
    assert rows["all-fp16"].peak_norm_input > 256
    assert not rows["all-fp16"].finite or rows["all-fp16"].max_abs > 0.1
    for variant in ("mixed", "mixed ONNX/ORT"):
        assert rows[variant].finite and rows[variant].max_abs < 1 / 255, rows[variant]
