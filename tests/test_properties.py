"""Property-based checks of the backbone over drawn input sizes, and its
documented behaviour on non-finite input."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evit_mm.models import EfficientViT
from reference import randomize_, relative_error


@pytest.fixture(scope='module')
def models():
    """An eval-mode M0 with random weights and its fused twin."""
    model = randomize_(EfficientViT('m0', window_size=(7, 5, 3))).eval()
    fused = EfficientViT('m0', window_size=(7, 5, 3)).eval()
    fused.load_state_dict(model.state_dict())
    fused.switch_to_deploy()
    return model, fused


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=st.integers(1, 150), width=st.integers(1, 150),
       batch=st.integers(1, 3))
def test_shapes_fusion_and_batch_independence(models, height, width, batch):
    model, fused = models
    x = torch.randn(batch, 3, height, width)
    with torch.no_grad():
        outputs = model(x)
        fused_outputs = fused(x)
        first_alone = model(x[:1])
    for stage, (out, fused_out, alone) in enumerate(
            zip(outputs, fused_outputs, first_alone)):
        halvings = stage + 4
        assert out.shape == (batch, model.embed_dims[stage],
                             math.ceil(height / 2**halvings),
                             math.ceil(width / 2**halvings))
        assert relative_error(fused_out, out) < 1e-5
        assert relative_error(out[:1], alone) < 1e-5


def test_non_finite_input_stays_in_its_image(models):
    """NaN/inf are not rejected (checking would cost a pass over every
    input): they make the outputs of their own image non-finite and leave
    the other images of the batch untouched."""
    model, _ = models
    x = torch.randn(2, 3, 64, 64)
    clean = x[1:].clone()
    x[0, 0, 5, 5] = float('nan')
    x[0, 1, 9, 9] = float('inf')
    with torch.no_grad():
        outputs = model(x)
        expected = model(clean)
    for out, ref in zip(outputs, expected):
        assert not torch.isfinite(out[0]).all()
        assert relative_error(out[1:], ref) < 1e-5
