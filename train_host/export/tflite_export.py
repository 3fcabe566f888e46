"""torch -> LiteRT fp32 (litert-torch, NHWC input) -> fully int8 (ai-edge-quantizer static_wi8_ai8,
calibrated ranges widened by HEADROOM).

The CAM output stays NCHW ([1, C, h, w]) in every file, so the device reads it one way; only the
image input is channel-last, which LiteRT's kernels want anyway.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from train_host.models.camgraph import CamExport

log = logging.getLogger(__name__)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def export_fp32(model: CamExport, input_size: int, out: Path) -> None:
    import litert_torch

    nhwc = litert_torch.to_channel_last_io(model, args=[0])
    sample = (torch.zeros(1, input_size, input_size, 3),)
    litert_torch.convert(nhwc.eval(), sample).export(str(out))


def _signature_input(fp32: Path) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    (signature, io), *_ = Interpreter(model_path=str(fp32)).get_signature_list().items()
    if len(io["inputs"]) != 1:
        raise RuntimeError(f"{fp32.name}: expected one input, found {io['inputs']}")
    return signature, io["inputs"][0]


LAYOUT_OPS = {"TRANSPOSE", "RESHAPE"}
# the OOD features' path back to the pooling: the standardising multiply-add, the concatenation
# and the means themselves stay float (int8 pooled means moved the cannot-judge decision on 1 in
# 10 photos; their inputs, the stage activations, stay int8)
FEATURE_OPS = {"ADD", "MUL", "CONCATENATION", "MEAN", "SUM"}


def head_ops(fp32: Path) -> list[tuple[str, str]]:
    """(op name, output tensor name) of the ops that produce the outputs, through layout ops,
    and, for a 2-D output other than the logits, back through the pooling of the features."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(fp32))
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    producer = {o: op for op in it._get_ops_details() for o in op["outputs"]}
    outputs = it.get_output_details()
    flat = sorted((d for d in outputs if len(d["shape"]) == 2), key=lambda d: d["shape"][1])
    features = {d["index"] for d in flat[1:]}  # the narrowest 2-D output is the logits
    found, todo = [], [(d["index"], d["index"] in features) for d in outputs]
    seen = set()
    while todo:
        tensor, feature_path = todo.pop()
        op = producer.get(tensor)
        if op is None or id(op) in seen:
            continue
        seen.add(id(op))
        found.append((op["op_name"], names[op["outputs"][0]]))
        if op["op_name"] in LAYOUT_OPS:
            todo.append((op["inputs"][0], feature_path))
        elif feature_path and op["op_name"] in FEATURE_OPS - {"MEAN", "SUM"}:
            todo += [(i, True) for i in op["inputs"] if i in producer]
    return found


# Activation ranges from calibration are widened by this factor (away from zero). Unusual photos
# drive LiteRT's fully int8 activations far past the ranges seen on training images (2-3x on
# MSID's normal196), and clipping there moved P(mpox) by up to 0.46; 1.5x halves the mean error
# and the worst one on training images the calibration did not use (docs/training.md, bundles).
HEADROOM = 1.5


def quantize_int8(
    fp32: Path,
    calib: Sequence[np.ndarray],
    out: Path,
    input_range: tuple[float, float],
    headroom: float = HEADROOM,
) -> None:
    """`calib`: preprocessed NCHW arrays, transposed here to the file's NHWC input;
    `input_range`: what preprocessing can produce, so no pixel is clipped.

    The head ops stay float (see onnx_export: an int8 logit scale clips confident images)."""
    with warnings.catch_warnings():  # calibration reads every tensor, as that debug option warns
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        _quantize(fp32, calib, out, input_range, headroom)
    log.info("wrote %s", out)


def widen(lo: np.ndarray, hi: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Stretch a range away from zero by `factor` (a range that holds zero still does)."""
    return np.where(lo < 0, lo * factor, lo), np.where(hi > 0, hi * factor, hi)


def _quantize(
    fp32: Path, calib, out: Path, input_range: tuple[float, float], headroom: float
) -> None:
    from ai_edge_quantizer import quantizer, recipe

    signature, input_name = _signature_input(fp32)
    q = quantizer.Quantizer(str(fp32), recipe.static_wi8_ai8())
    for op_name, tensor in head_ops(fp32):
        q.update_quantization_recipe(
            regex="^" + re.escape(tensor) + ";?$",  # scope names end in ";"
            operation_name=recipe.TFLOperationName(op_name),
            algorithm_key=recipe.AlgorithmName.NO_QUANTIZE,
        )
    q.update_quantization_recipe(  # and float graph outputs, not a re-quantize after the head
        regex=".*",
        operation_name=recipe.TFLOperationName.OUTPUT,
        algorithm_key=recipe.AlgorithmName.NO_QUANTIZE,
    )
    samples = [{input_name: x.transpose(1, 2, 0)[None].astype(np.float32)} for x in calib]
    result = q.calibrate({signature: samples}, num_threads=os.cpu_count() or 1)
    for r in result.values():
        r["min"], r["max"] = widen(r["min"], r["max"], headroom)
    lo, hi = result[f"{signature}_{input_name}"]["min"], result[f"{signature}_{input_name}"]["max"]
    result[f"{signature}_{input_name}"] = {
        "min": np.full_like(lo, input_range[0]),
        "max": np.full_like(hi, input_range[1]),
    }
    q.quantize(result, enable_progress_bar=False).export_model(str(out), overwrite=True)
