# evit_mm converts the ONNX graph with openvino.convert_model (mmdeploy's
# onnx2openvino needs the removed Model Optimizer); the shape here is only
# the example mmdeploy's config checks expect, the IR keeps H/W dynamic.
backend_config = dict(
    type='openvino',
    model_inputs=[dict(opt_shapes=dict(input=[1, 3, 800, 1344]))])
