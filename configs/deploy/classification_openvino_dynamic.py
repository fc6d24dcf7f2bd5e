_base_ = ['./_base_/classification.py', './_base_/openvino.py']
