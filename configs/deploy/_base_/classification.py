_base_ = ['./onnx.py']
# The output is the class scores (softmax), as mmdeploy exports classifiers.
onnx_config = dict(
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'}, output={0: 'batch'}))
codebase_config = dict(type='mmpretrain', task='Classification')
