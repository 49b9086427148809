"""A relational model keeps working through torch's graph tools and ONNX (packed weights expand in the graph)."""
import warnings

import numpy as np
import pytest
import timm
import torch

import timm_relgraph  # noqa: F401


@pytest.fixture(scope='module')
def model_and_ref():
    torch.manual_seed(0)
    model = timm.create_model('relgraph_resnet18_c0.37_l2.28', widths=(64, 72, 80, 96), num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    return model, x, ref


def test_jit_script_and_trace(model_and_ref):
    model, x, ref = model_and_ref
    with torch.no_grad():
        assert torch.allclose(torch.jit.script(model)(x), ref, atol=1e-5)
        assert torch.allclose(torch.jit.trace(model, x)(x), ref, atol=1e-5)


def test_torch_export(model_and_ref):
    model, x, ref = model_and_ref
    exported = torch.export.export(model, (x,))
    assert torch.allclose(exported.module()(x), ref, atol=1e-5)


def test_torch_compile(model_and_ref):
    model, x, ref = model_and_ref
    compiled = torch.compile(model)
    with torch.no_grad():
        assert torch.allclose(compiled(x), ref, atol=1e-4)


def test_onnx_export_runs_in_onnxruntime(model_and_ref):
    import onnxruntime as ort
    model, x, ref = model_and_ref
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        program = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    session = ort.InferenceSession(program.model_proto.SerializeToString())
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.allclose(out, ref.numpy(), atol=1e-4)
