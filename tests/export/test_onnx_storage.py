"""How the onnx target stores its constants (export/onnx_storage.py): the integer graph's weights as int8 where
Loihi's mantissas fit 8 bits after their common factor 2, each layer's weights once however many synapses
read them, a dense layer after a global pool one row per channel; the graphs still equal the reference
bit for bit, and what onnxruntime rebuilds from a compact constant is the original array exactly."""

from __future__ import annotations

import numpy as np
import pytest

import onnx  # noqa: E402  (installed by make: extras onnx)
import onnxruntime  # noqa: E402

from dsatgo_deploy.checkpoint import save_checkpoint
from dsatgo_deploy.export.exporter import ONNX_FILE, ONNX_FLOAT_FILE, export_checkpoint
from dsatgo_deploy.export.onnx_storage import block_rows, common_power_of_two, narrowest_integers
from dsatgo_deploy.export.onnx_writer import _Builder
from dsatgo_deploy.hardware_sim.onnx_runner import run_onnx
from dsatgo_deploy.hardware_sim.reference import simulate

from .test_freeze import ARCHITECTURES, settled_checkpoint
from .test_onnx import assert_same_run


def _initializers(path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}


def _named(initializers: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    return [value for name, value in initializers.items() if name.rsplit("_", 1)[0] == prefix]


@pytest.fixture(scope="module")
def resnet_export(tmp_path_factory):
    """ResNet-19 at width 1/16 on 3x8x8 noise (residual sums, a global pool before fc1), exported to onnx."""
    build, shape = ARCHITECTURES["resnet19"]
    arch = build()
    x = np.random.default_rng(2).uniform(0, 1, (16, *shape)).astype(np.float32)
    folder = tmp_path_factory.mktemp("resnet_onnx")
    save_checkpoint(folder / "model.pt", arch, settled_checkpoint(arch, x, passes=3)["state_dict"], {"epoch": 0})
    return export_checkpoint(folder / "model.pt", folder / "out", target="onnx", calibration_x=x), x


def test_resnet_weights_are_stored_as_int8_once_per_layer_and_stay_bit_exact(resnet_export):
    result, x = resnet_export
    net = result.network
    stored = _initializers(result.out_dir / ONNX_FILE)
    for layer in net.layers:
        weights = _named(stored, f"{layer.name}.weight" if layer.kind == "conv" else f"{layer.name}.weight_t")
        assert len(weights) == 1, layer.name  # once, also for a layer with several sources
        assert weights[0].dtype == np.int8, layer.name  # even mantissas -254..254: int8 times 2
        if layer.kind == "conv":
            np.testing.assert_array_equal(weights[0].astype(np.int64) << common_power_of_two(layer.weight),
                                          layer.weight)
        biases = _named(stored, f"{layer.name}.bias")
        assert len(biases) == 1 and biases[0].size <= layer.output_shape[0], layer.name  # per channel at most
    assert any(np.abs(layer.weight).max() > 127 for layer in net.layers)  # int16 if stored as they are
    assert any(len(layer.sources) > 1 for layer in net.layers)
    fc1 = net.layer("fc1")  # after the global pool: one weight row per source channel
    channels = net.layer(fc1.sources[0]).output_shape[0]
    assert _named(stored, "fc1.weight_t")[0].shape == (channels, 1, fc1.weight.shape[0])
    reference = simulate(net, x)
    assert sum(int(s.sum()) for s in reference.spikes.values()) > 100
    assert_same_run(run_onnx(result.out_dir / ONNX_FILE, x), reference)
    floated = _initializers(result.out_dir / ONNX_FLOAT_FILE)
    assert all(v.dtype == np.float32 for name, v in floated.items() if "weight" in name)  # real floats: float32
    assert _named(floated, "fc1.weight_t")[0].shape == (channels, 1, fc1.weight.shape[0])


@pytest.mark.parametrize("values, dtype, groups, stored_dtype, stored_shape", [
    (np.arange(-6, 6, 2, dtype=np.int64).reshape(3, 2) * 64, np.float32, (), np.int8, (3, 2)),  # 2**7 times int8
    (np.array([[-40001], [40001]], np.int64), np.float64, (), np.int32, (2, 1)),
    (np.repeat(np.array([[3, -5, 7]], np.int64), 4, axis=0), np.int64, (), np.int8, (1, 1, 3)),  # one row for all
    (np.repeat(np.random.default_rng(0).normal(size=(5, 1, 7)), 6, axis=1).reshape(30, 7), np.float32, (5,),
     np.float32, (5, 1, 7)),  # one row per block of 6
    (np.random.default_rng(1).normal(size=(4, 3, 3, 3)), np.float32, (4,), np.float32, (4, 3, 3, 3)),  # as is
])
def test_onnxruntime_rebuilds_each_compact_constant_exactly(values, dtype, groups, stored_dtype, stored_shape):
    builder = _Builder()
    name = builder.stored(values, dtype, "probe", groups)
    assert builder.stored(values, dtype, "probe", groups) == name  # a second reader: the same tensor
    out = builder.op("Identity", [name], output="out")
    onnx_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = builder.model("probe", [], [onnx.helper.make_tensor_value_info(out, onnx_type, values.shape)], {}, "")
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rebuilt = session.run(None, {})[0]
    assert rebuilt.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(rebuilt, values.astype(dtype))
    stored = onnx.numpy_helper.to_array(model.graph.initializer[0])  # the array itself; then tiny shapes, scales
    assert stored.dtype == np.dtype(stored_dtype) and stored.shape == stored_shape


def test_helpers_find_the_factor_the_dtype_and_the_blocks():
    assert common_power_of_two(np.array([-254, 12, 0])) == 1 and common_power_of_two(np.zeros(3, np.int64)) == 0
    assert narrowest_integers(np.array([-128, 127])).dtype == np.int8
    assert narrowest_integers(np.array([128])).dtype == np.int16
    assert narrowest_integers(np.array([-(2 ** 40)])).dtype == np.int64
    rows = np.array([[1, 2], [1, 2], [3, 4], [3, 4]])
    assert block_rows(rows, (2,))[0] == 2 and block_rows(rows, (4,)) is None and block_rows(rows, (1,)) is None
