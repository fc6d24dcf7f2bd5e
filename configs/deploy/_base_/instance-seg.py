_base_ = ['./detection.py']
# The graph returns 28x28 RoI masks; mmdeploy pastes them into the image
# after the backend (export_postprocess_mask=False), as mmdet does.
onnx_config = dict(
    output_names=['dets', 'labels', 'masks'],
    dynamic_axes=dict(masks={0: 'batch', 1: 'num_dets'}))
# (mmdeploy 1.3.1 runs Mask R-CNN as an ObjectDetection task.)
codebase_config = dict(export_postprocess_mask=False)
