_base_ = ['./onnx.py']
# The graph outputs the class logits at the head's resolution, (N, C, h, w):
# no resize, no argmax in it (resize_logits=False, with_argmax=False). The
# label map (mmseg's bilinear resize to the input size + argmax) is drawn
# after the graph by evit_mm.deploy.label_map.LabelMapTail, exactly and
# several times faster than in the graph. For a graph that outputs the
# label map (N, 1, H, W) itself: resize_logits=True, with_argmax=True.
onnx_config = dict(
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        output={0: 'batch', 2: 'height', 3: 'width'}))
codebase_config = dict(
    type='mmseg', task='Segmentation', with_argmax=False, resize_logits=False)
