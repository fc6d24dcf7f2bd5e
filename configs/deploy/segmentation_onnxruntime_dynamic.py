_base_ = ['./_base_/segmentation.py', './_base_/onnxruntime.py']
