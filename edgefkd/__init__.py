"""edgefkd: ship distilled face-recognition students to edge runtimes and prove parity.

Heavy libraries (torch, onnx, onnxruntime, openvino, tensorrt) are imported lazily inside
the functions that need them so that `edgefkd --help` stays instant.
"""

__version__ = "0.1.0"
