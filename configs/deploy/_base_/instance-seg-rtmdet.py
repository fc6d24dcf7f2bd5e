_base_ = ['./detection.py']
# RTMDet-Ins: the graph returns each kept instance's mask probabilities at
# the input's size (its stride-8 mask map decoded and upsampled);
# mmdeploy resizes them to the image and thresholds them after the backend.
onnx_config = dict(
    output_names=['dets', 'labels', 'masks'],
    dynamic_axes=dict(
        masks={0: 'batch', 1: 'num_dets', 2: 'height', 3: 'width'}))
