_base_ = ['./_base_/instance-seg-rtmdet.py', './_base_/openvino.py']
