"""The backends evit_mm deploys to and the keys it adds to mmdeploy's
deploy configs."""

BACKENDS = ('onnxruntime', 'openvino')
# The deploy config's key (in ``codebase_config``) for how a detector's
# graph pads its input: ``dict(size_divisor, value)``.
GRAPH_PADDING = 'graph_padding'
# The deploy config's key (in ``codebase_config``) for whether a
# segmentor's graph resizes its logits to the input size (mmdeploy's
# default, True) or outputs them at the head's resolution (False: the
# label map is drawn after the graph, evit_mm.deploy.label_map).
RESIZE_LOGITS = 'resize_logits'
