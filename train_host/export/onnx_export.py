"""torch -> ONNX (static batch 1, onnxsim) -> ONNX Runtime static INT8 (QDQ, per channel,
activation ranges at the 99.999th percentile of calibration).

The two head nodes (the linear layer and the CAM conv) stay in float: they cost nothing, and an
int8 output scale fitted on calibration images would clip logits of more confident images.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

from train_host import UserError
from train_host.models.camgraph import CamExport

log = logging.getLogger(__name__)
OPSET = 17
# Activation ranges from min/max grow with every unusual calibration photo and coarsen the steps
# for all others: 555 MSID calibration images flipped 4.4 % of the other collections' decisions,
# 128 images 1.4 %. The 99.999th percentile drops the few extreme values (the default's mean
# |dP(mpox)| on the other collections 0.016 -> 0.014; docs/training.md, "int8 off MSID").
PERCENTILE = 99.999


def export_fp32(model: CamExport, input_size: int, out: Path) -> None:
    from onnxsim import simplify

    x = torch.zeros(1, 3, input_size, input_size)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            model,
            (x,),
            str(raw),
            input_names=["input"],
            output_names=list(model.output_names),
            opset_version=OPSET,
            dynamo=False,
        )
        simplified, ok = simplify(onnx.load(str(raw)))
    if not ok:
        raise UserError(f"onnxsim could not validate the simplified graph for {out.name}")
    onnx.save(simplified, str(out))


def head_nodes(path: Path) -> list[str]:
    """Names of the nodes that produce the graph outputs."""
    graph = onnx.load(str(path)).graph
    outputs = {o.name for o in graph.output}
    return [n.name for n in graph.node if outputs & set(n.output)]


# Images per calibration pass: the percentile calibrator keeps every activation of a pass in
# memory (337 images at once took 12.5 GB), and merges its histograms pass by pass
STRIDE = 64


class _Reader:
    """ONNX Runtime's CalibrationDataReader over preprocessed NCHW arrays, read in passes of
    STRIDE images (`CalibStridedMinMax`, which every calibrator honours)."""

    def __init__(self, images: Sequence[np.ndarray]):
        self._images = list(images)
        self.set_range(0, len(self._images))

    def __len__(self) -> int:
        """Rounded up to whole passes (ONNX Runtime wants a multiple); the last pass is short."""
        return -(-len(self._images) // STRIDE) * STRIDE

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self._images[start_index:end_index])

    def get_next(self) -> dict | None:
        x = next(self._it, None)
        return None if x is None else {"input": x[None].astype(np.float32)}


def quantize_int8(
    fp32: Path, calib: Sequence[np.ndarray], out: Path, input_range: tuple[float, float]
) -> None:
    """`input_range`: what preprocessing can produce, so no pixel is clipped (see camgraph).
    Percentile ranges need every tensor to vary measurably; one that hardly does (in the
    untrained stand-ins of `mpox-bench export-baselines`) makes the histogram impossible, and
    then the whole file takes min/max ranges, as before percentiles, with a warning."""
    from onnxruntime.quantization import CalibrationMethod

    try:
        _quantize(fp32, calib, out, input_range, CalibrationMethod.Percentile)
    except ValueError as e:
        if "bins" not in str(e):
            raise
        log.warning("percentile calibration impossible (%s): min/max ranges instead", e)
        _quantize(fp32, calib, out, input_range, CalibrationMethod.MinMax)
    log.info("wrote %s", out)


def _quantize(fp32: Path, calib, out: Path, input_range: tuple[float, float], method) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prep.onnx"
        quant_pre_process(str(fp32), str(prepped), skip_symbolic_shape=True)
        quantize_static(
            str(prepped),
            str(out),
            _Reader(calib),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            # 7-bit weights: x86 CPUs without VNNI (AVX2-only, e.g. AMD Zen 2/3) multiply
            # uint8 x int8 with VPMADDUBSW, whose 16-bit pair sums saturate with full 8-bit
            # weights (measured: 8 % of the default's decisions flipped); ARM is unaffected
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=head_nodes(prepped),
            calibrate_method=method,
            extra_options={
                "CalibPercentile": PERCENTILE,
                "CalibStridedMinMax": STRIDE,
                "TensorQuantOverrides": {
                    "input": [
                        {"rmin": np.float32(input_range[0]), "rmax": np.float32(input_range[1])}
                    ]
                },
            },
        )
