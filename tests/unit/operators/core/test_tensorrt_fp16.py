"""The TensorRT back end, checked as far as a machine without a GPU can: the fp16 graph it builds from against
TorchScript fp32 on a real case (ONNX Runtime runs that graph on the CPU), and every TensorRT call it makes against the
Python API of TensorRT 11 (the bindings' own symbol names: the bindings cannot be imported without TensorRT's
libraries, but they name every class, enum value and method they expose)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from operators.core.model import tensorrt_backend as predictor_module

#: TensorRT Python API that TensorRT 11 removed (NVIDIA's 10.x to 11.x migration guide: weak typing is gone)
REMOVED_IN_TRT11 = {"FP16", "BF16", "INT8", "FP8", "STRICT_TYPES", "OBEY_PRECISION_CONSTRAINTS",
                    "PREFER_PRECISION_CONSTRAINTS", "platform_has_fast_fp16", "platform_has_fast_int8"}
#: local names in TensorRTPredictor that hold TensorRT objects
TRT_OBJECTS = {"builder", "network", "parser", "config", "profile"}
TRT_ATTRIBUTES = {"engine", "context"}  # self.engine, self.context


def tensorrt_calls() -> set[str]:
    """Every TensorRT name TensorRTPredictor uses: ``trt.A.B`` chains and methods called on TensorRT objects."""
    tree = ast.parse(Path(predictor_module.__file__).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TensorRTPredictor")
    names = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute):
            chain, base = [node.attr], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            root = base.id if isinstance(base, ast.Name) else None
            if root == "trt":
                names.update(a for a in chain if a != "__version__")
            elif root in TRT_OBJECTS and len(chain) == 1:
                names.add(node.attr)
            elif root == "self" and len(chain) == 2 and chain[1] in TRT_ATTRIBUTES:
                names.add(chain[0])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value,
                                                                                                ast.Call):
            inner = node.func.value.func  # trt.Runtime(...).deserialize_cuda_engine
            if isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name) and inner.value.id == "trt":
                names.add(node.func.attr)
    return names


def bindings_names() -> bytes:
    """The TensorRT bindings' extension module (``tensorrt-cu13-bindings``), whose string table holds every Python
    name it binds, each ending in a NUL byte (the linker may share a name's bytes with a longer one ending alike)."""
    spec = importlib.util.find_spec("tensorrt_bindings")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tensorrt-cu13-bindings not installed (a dev dependency)")
    return next(Path(spec.submodule_search_locations[0]).glob("tensorrt*.so")).read_bytes()


def bound(name: str, table: bytes) -> bool:
    return name.encode() + b"\0" in table


def test_the_tensorrt_back_end_calls_only_what_tensorrt_11_has():
    from importlib.metadata import version

    used = tensorrt_calls()
    assert {"STRONGLY_TYPED", "create_network", "OnnxParser", "build_serialized_network", "deserialize_cuda_engine",
            "execute_async_v3"} <= used  # the walk sees the calls
    assert not used & REMOVED_IN_TRT11, f"calls removed in TensorRT 11: {sorted(used & REMOVED_IN_TRT11)}"
    table = bindings_names()
    assert version("tensorrt-cu13-bindings").startswith("11.")
    # the check tells an API that is gone: BuilderFlag.FP16 was bound by TensorRT 10, not by 11
    assert not bound("FP16", table) and not bound("platform_has_fast_fp16", table) and bound("BuilderFlag", table)
    missing = sorted(n for n in used if not bound(n, table))
    assert missing == [], f"not in TensorRT {version('tensorrt-cu13-bindings')}'s Python API: {missing}"


def test_fp16_graph_matches_torchscript_fp32_on_a_real_case(gtv_model_input):
    """The mixed-precision graph (fp16 inside, fp32 input and output) on a real BraTS validation case."""
    from operators.core.model.predictor import OnnxRuntimePredictor, TorchScriptPredictor

    spec, image = gtv_model_input
    ref = TorchScriptPredictor(spec, device="cpu").predict(image)
    fp16 = OnnxRuntimePredictor(spec, precision="fp16").predict(image)
    assert fp16.dtype == np.float32 and fp16.shape == ref.shape
    assert np.abs(fp16 - ref).max() < 0.01  # measured 0.003-0.006 on three validation cases
    a, b = ref > 0.5, fp16 > 0.5
    assert a.sum() > 1000
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.99


def test_the_fp16_graph_is_hash_checked(tmp_path):
    import shutil

    from operators.core.errors import ModelSpecError
    from operators.core.model.spec import ONNX_FP16_PATH, find_model

    bundle = tmp_path / "gtv"
    shutil.copytree(Path(__file__).resolve().parents[4] / "models" / "glioblastoma_gtv", bundle)
    with open(bundle / ONNX_FP16_PATH, "ab") as f:
        f.write(b"\0")
    spec = find_model(bundle)
    with pytest.raises(ModelSpecError, match=r"model_fp16\.onnx: sha256 .* does not match onnx_fp16_sha256"):
        spec.verified_onnx_file("fp16")
