"""Model bundles (metadata, hashes) and the inference back ends (TorchScript, ONNX Runtime, TensorRT, deepbet)."""
