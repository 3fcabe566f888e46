"""Checkpoint -> verified model bundle (ONNX and TFLite, fp32 and int8, in-graph CAM)."""
