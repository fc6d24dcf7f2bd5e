_base_ = ['./_base_/segmentation.py', './_base_/openvino.py']
