_base_ = ['./_base_/instance-seg.py', './_base_/openvino.py']
