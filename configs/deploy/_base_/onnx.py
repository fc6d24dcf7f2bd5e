# ONNX export as mmdeploy's torch2onnx reads it: opset 11 (NonMaxSuppression,
# RoiAlign, dynamic Resize), dynamic batch/height/width set by each task.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    optimize=True)
