_base_ = ['./onnx.py']
# As mmdeploy's own segmentation configs: the graph outputs the label map
# (N, 1, H, W), mmseg's resize + argmax in the graph. evit_mm's deploy.py
# (without --label-map-in-graph) records resize_logits=False and
# with_argmax=False instead: the graph then ends at the head's logits
# (N, C, h, w) and evit_mm.deploy.label_map.LabelMapTail draws the label map
# after it, exactly and several times faster.
onnx_config = dict(
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        output={0: 'batch', 2: 'height', 3: 'width'}))
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
