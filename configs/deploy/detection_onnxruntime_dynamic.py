_base_ = ['./_base_/detection.py', './_base_/onnxruntime.py']
