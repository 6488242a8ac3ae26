"""Exporters: ONNX, OpenVINO, INT8 and TensorRT. Heavy libraries are imported inside functions."""
