"""Models of the exact official architectures with seeded random weights, written in the
official file formats, so tests and ``main.py bench`` run on a machine without the real
weights (speed does not depend on the values; formats and shapes are exact).

- SimSwap generators: ``torch.save(state_dict)`` with the official keys, and a zip shaped
  like ``checkpoints.zip`` (``checkpoints/people/latest_net_G.pth``, ...).
- BiSeNet face parser (``79999_iter.pth``): ``torch.save(state_dict)`` with the official keys.
- SimSwap ArcFace: a whole module pickled under ``models.arcface_models.ResNet`` (that
  module name is registered in ``sys.modules`` only while writing), optionally in the old
  ``{'model': DataParallel(module)}`` form.
- inswapper_128 / w600k look-alikes: tiny ONNX graphs with the same inputs and outputs
  (inswapper's ``emap`` as the last initializer).
"""

from __future__ import annotations

import copy
import sys
import tempfile
import types
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx
    import torch

    from export.arcface import ArcFaceResNet
    from export.parsing import BiSeNet
    from export.simswap import SimSwapGenerator

ALL: tuple[str, ...] = ("simswap-224", "arcface-simswap", "inswapper-128", "arcface-w600k")
# Named explicitly: the parser (53 MB) is optional for the app.
SUPPORTED: tuple[str, ...] = (*ALL, "simswap-512", "face-parsing")
OFFICIAL_MODULE = "models.arcface_models"
_OPSET = 17
_IR_VERSION = 8  # old enough for every ONNX Runtime we support


def make_generator(size: int = 224, seed: int = 0) -> SimSwapGenerator:
    """A ``SimSwapGenerator`` with seeded random weights and non-trivial BatchNorm
    statistics (so eval-mode BN is exercised), in eval mode."""
    import torch

    from export.simswap import SimSwapGenerator

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SimSwapGenerator(size)
    _randomise_batchnorm(model, gen)
    return model.eval()


def make_arcface(seed: int = 0) -> ArcFaceResNet:
    """An ``ArcFaceResNet`` with seeded random weights whose activations stay O(1)."""
    import torch

    from export.arcface import ArcFaceResNet, IRBlock

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ArcFaceResNet()
    _randomise_batchnorm(model, gen)
    with torch.no_grad():
        # 33 residual blocks add up: damp each residual branch so the random network's
        # output stays near unit scale (absolute ONNX tolerances then mean something).
        for block in model.modules():
            if isinstance(block, IRBlock):
                block.bn2.weight.mul_(0.2)
    return model.eval()


def make_parser(seed: int = 0) -> BiSeNet:
    """The BiSeNet face parser with seeded random weights and BatchNorm statistics, eval
    mode. The statistics are those of each layer's actual activations on a seeded random
    input, so the logits stay O(1) like a trained net's (absolute tolerances mean something)."""
    import torch

    from export.parsing import INPUT_SIZE, BiSeNet

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BiSeNet()
    _randomise_batchnorm(model, gen)
    _calibrate_batchnorm(model, torch.randn(1, 3, INPUT_SIZE, INPUT_SIZE, generator=gen), gen)
    return model.eval()


def _calibrate_batchnorm(model: torch.nn.Module, sample: torch.Tensor,
                         gen: torch.Generator) -> None:
    """Set each BatchNorm's running mean/var to its input's per-channel statistics on
    ``sample`` (times a seeded jitter), layer by layer in forward order."""
    import torch
    from torch import nn

    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        assert isinstance(module, nn.BatchNorm2d)
        assert module.running_mean is not None and module.running_var is not None
        x = args[0]
        n = module.num_features
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)) + torch.randn(n, generator=gen) * 0.05)
        var = x.var(dim=(0, 2, 3)) if x.shape[2] * x.shape[3] > 1 else x.pow(2).mean((0, 2, 3))
        module.running_var.copy_(var * (torch.rand(n, generator=gen) * 0.5 + 0.75) + 1e-3)

    handles = [m.register_forward_pre_hook(hook) for m in norms]
    try:
        with torch.no_grad():
            model.eval()(sample)
    finally:
        for handle in handles:
            handle.remove()


def _randomise_batchnorm(model: torch.nn.Module, gen: torch.Generator) -> None:
    import torch
    from torch import nn

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                n = module.num_features
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.1)


def write_simswap_checkpoint(path: Path, size: int = 224, seed: int = 0) -> Path:
    """``torch.save(state_dict)`` of a random generator, as the official code saves it."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(make_generator(size, seed).state_dict(), path)
    return path


def write_parsing_checkpoint(path: Path, seed: int = 0) -> Path:
    """``torch.save(state_dict)`` of a random BiSeNet parser, like ``79999_iter.pth``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(make_parser(seed).state_dict(), path)
    return path


def write_checkpoints_zip(path: Path, sizes: Iterable[int] = (224,), seed: int = 0) -> Path:
    """A zip shaped like the official release archives: ``checkpoints/people/
    latest_net_G.pth`` for 224, ``checkpoints/512/550000_net_G.pth`` for 512."""
    from export.simswap import ZIP_MEMBERS

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for size in sizes:
            member = "checkpoints/" + ZIP_MEMBERS[size]
            pth = write_simswap_checkpoint(Path(tmp) / f"{size}.pth", size, seed)
            zf.write(pth, member)
    return path


@contextmanager
def official_module_names() -> Iterator[dict[str, type]]:
    """Register stand-in ``models.arcface_models`` classes (subclasses of ours with the
    official module path) in ``sys.modules`` for the duration of the block."""
    from torch import nn

    from export.arcface import ArcFaceResNet, IRBlock, SEBlock

    classes = {
        name: type(name, (base,), {"__module__": OFFICIAL_MODULE, "__qualname__": name})
        for name, base in (("ResNet", ArcFaceResNet), ("IRBlock", IRBlock),
                           ("SEBlock", SEBlock), ("ArcMarginModel", nn.Module))
    }
    added: list[str] = []
    if "models" not in sys.modules:
        package = types.ModuleType("models")
        package.__path__ = []
        sys.modules["models"] = package
        added.append("models")
    if OFFICIAL_MODULE in sys.modules:
        raise RuntimeError(f"{OFFICIAL_MODULE} is already imported; refusing to replace it")
    module = types.ModuleType(OFFICIAL_MODULE)
    for name, cls in classes.items():
        setattr(module, name, cls)
    sys.modules[OFFICIAL_MODULE] = module
    added.append(OFFICIAL_MODULE)
    try:
        yield classes
    finally:
        for name in reversed(added):
            sys.modules.pop(name, None)


def pickle_official_arcface(model: ArcFaceResNet, path: Path, *, legacy_dict: bool = False,
                            legacy_format: bool = False) -> Path:
    """Save ``model`` (an ``ArcFaceResNet``) as the official checkpoint is saved: the whole
    module under ``models.arcface_models.ResNet`` (or ``{'model': DataParallel(...)}``).
    ``legacy_format``: torch's pre-1.6 serialisation (one pickle stream, not a zip)."""
    import torch

    from export.arcface import ArcFaceResNet, IRBlock, SEBlock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clone = copy.deepcopy(model)
    with official_module_names() as classes:
        mapping = {ArcFaceResNet: classes["ResNet"], IRBlock: classes["IRBlock"],
                   SEBlock: classes["SEBlock"]}
        for module in clone.modules():
            if type(module) in mapping:
                module.__class__ = mapping[type(module)]
        obj: object = clone
        if legacy_dict:
            obj = {"epoch": 16, "model": torch.nn.DataParallel(clone)}
        with warnings.catch_warnings():
            # The legacy format wants the classes' source code; the stand-ins have none.
            warnings.simplefilter("ignore", UserWarning)
            torch.save(obj, path, _use_new_zipfile_serialization=not legacy_format)
    return path


def write_arcface_checkpoint(path: Path, seed: int = 0, *, legacy_dict: bool = False) -> Path:
    """A random SimSwap ArcFace pickled like ``arcface_checkpoint.tar``."""
    return pickle_official_arcface(make_arcface(seed), path, legacy_dict=legacy_dict)


def _save_onnx(graph: onnx.GraphProto, path: Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)],
                              producer_name="swapcam-random-models")
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_inswapper_like_onnx(path: Path, seed: int = 0) -> Path:
    """inswapper_128's interface on a tiny net: ``target`` [1,3,128,128] RGB [0,1] and
    ``source`` [1,512] → ``output`` [1,3,128,128] in [0,1]; the last initializer is a
    512×512 ``emap`` (the identity projection the app reads from the file)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv_w = (np.eye(3, dtype=np.float32) * 2.0
              + rng.normal(0, 0.3, (3, 3)).astype(np.float32)).reshape(3, 3, 1, 1)
    src_w = rng.normal(0, 1.0, (512, 3)).astype(np.float32)
    emap = rng.normal(0, 1.0 / np.sqrt(512), (512, 512)).astype(np.float32)
    inits = [
        numpy_helper.from_array(conv_w, "conv_w"),
        numpy_helper.from_array(np.full(3, -1.0, np.float32), "conv_b"),
        numpy_helper.from_array(src_w, "src_w"),
        numpy_helper.from_array(np.array([1, 3, 1, 1], np.int64), "bias_shape"),
        numpy_helper.from_array(emap, "emap"),  # must stay last
    ]
    nodes = [
        helper.make_node("Conv", ["target", "conv_w", "conv_b"], ["mixed"]),
        helper.make_node("MatMul", ["source", "src_w"], ["shift"]),
        helper.make_node("Reshape", ["shift", "bias_shape"], ["shift4"]),
        helper.make_node("Add", ["mixed", "shift4"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "inswapper_like",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
        initializer=inits,
    )
    return _save_onnx(graph, path)


def write_w600k_like_onnx(path: Path, seed: int = 0) -> Path:
    """w600k_r50's interface on a tiny net: [1,3,112,112] → [1,512] (a linear map of an
    8×8 average-pooled image, so different faces give different vectors)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 1.0 / np.sqrt(588), (588, 512)).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "fc_w"),
             numpy_helper.from_array(np.zeros(512, np.float32), "fc_b")]
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8],
                         strides=[8, 8]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "w600k_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 512])],
        initializer=inits,
    )
    return _save_onnx(graph, path)


def populate_models_dir(models_dir: Path, names: Iterable[str] = ALL, seed: int = 0) -> Path:
    """Write each named model's official file with random weights and import it with
    ``engines.models.import_model``, as a user would. ``simswap-512`` only when named
    (220 MB); there is no random SCRFD (the dlib detector is the offline default)."""
    from engines.models import MODELS, import_model

    models_dir = Path(models_dir)
    names = list(dict.fromkeys(names))
    unsupported = [n for n in names if n not in SUPPORTED]
    if unsupported:
        raise ValueError(f"no random-weight model for {', '.join(unsupported)}; expected "
                         f"names among {', '.join(SUPPORTED)}")
    models_dir.mkdir(parents=True, exist_ok=True)
    writers = {
        "simswap-224": lambda p: write_simswap_checkpoint(p, 224, seed),
        "simswap-512": lambda p: write_simswap_checkpoint(p, 512, seed),
        "arcface-simswap": lambda p: write_arcface_checkpoint(p, seed),
        "inswapper-128": lambda p: write_inswapper_like_onnx(p, seed),
        "arcface-w600k": lambda p: write_w600k_like_onnx(p, seed),
        "face-parsing": lambda p: write_parsing_checkpoint(p, seed),
    }
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".random-") as tmp:
        for name in names:
            official = Path(tmp) / MODELS[name].files[0].name
            writers[name](official)
            import_model(official, models_dir, name)
            official.unlink(missing_ok=True)
    return models_dir


def make_gfpgan(seed: int = 0) -> torch.nn.Module:
    """GFPGAN 1.4's ``GFPGANv1Clean`` with seeded random weights, in eval mode: modulation
    biases 1 (as the official initialisation), noise strengths non-zero (the released
    ones are; zero would hide the noise path), stored noise maps seeded."""
    import torch

    from export.gfpgan import GFPGANv1Clean, ModulatedConv2d, StyleConv

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GFPGANv1Clean()
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, ModulatedConv2d):
                    module.modulation.bias.fill_(1.0)
                if isinstance(module, StyleConv):
                    module.weight.copy_(0.1 * torch.randn(1, generator=gen).abs())
    return model.eval()


def write_gfpgan_checkpoint(path: Path, seed: int = 0) -> Path:
    """``GFPGANv1.4.pth`` in the official layout: ``{'params_ema': state_dict}``."""
    import torch

    state = {k: v.detach().clone() for k, v in make_gfpgan(seed).state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": state}, path)
    return path
