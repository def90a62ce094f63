"""Target nir: the frozen float network as a NIR graph that nir.read reads back equal, with the
discrete-to-continuous LIF mapping stated, schedules collapsed with a warning naming the layer,
residual ADDs as edges; snnTorch (an independent framework) imports it and spikes like our model."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

import nir  # noqa: E402  (installed by make: extras nir)

from dsatgo_deploy.train.zoo import convnet_architecture  # noqa: E402
from dsatgo_deploy.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from dsatgo_deploy.cli import export_main  # noqa: E402
from dsatgo_deploy.errors import UserError  # noqa: E402
from dsatgo_deploy.export.exporter import MANIFEST_FILE, NIR_FILE, export_checkpoint  # noqa: E402
from dsatgo_deploy.export.freeze import FrozenConv, FrozenLayer, FrozenNetwork, freeze, run_frozen  # noqa: E402
from dsatgo_deploy.export.nir_writer import DEFAULT_DT, build_nir, write_nir  # noqa: E402
from dsatgo_deploy.export.thresholds import calibrate_per_layer  # noqa: E402
from dsatgo_deploy.fileio import sha256_file  # noqa: E402
from tests.export.test_freeze import NEURON, settled_checkpoint  # noqa: E402

SAMPLES = 20
TOLERANCE = 0.02  # relative difference of spike counts per layer


def _equal(a, b) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(_equal(a[k], b[k]) for k in a))
    if isinstance(a, (np.ndarray, list, tuple)) or isinstance(b, (np.ndarray, list, tuple)):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def assert_graphs_equal(a, b) -> None:
    assert a.nodes.keys() == b.nodes.keys()
    assert sorted(a.edges) == sorted(b.edges)
    assert _equal(a.metadata, b.metadata)
    for name, node in a.nodes.items():
        other = b.nodes[name]
        assert type(node) is type(other), name
        for field in dataclasses.fields(node):
            assert _equal(getattr(node, field.name), getattr(other, field.name)), f"{name}.{field.name}"


def _quiet_build(frozen, per_layer=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_nir(frozen, per_layer)[0]


def snntorch_run(graph, x: np.ndarray, timesteps: int) -> tuple[dict[str, int], np.ndarray]:
    """Import ``graph`` with snnTorch and run it: spikes per layer over all samples, readout mean over T.

    One sample at a time, unbatched: snnTorch 1.0.0 maps nir.Flatten(start_dim=0) (NIR shapes exclude
    the batch) to torch.nn.Flatten(0), which would flatten a batch dimension too."""
    import nirtorch  # noqa: F401  (installed by make: extras peers)
    import snntorch.utils as snntorch_utils
    import torch
    from snntorch.import_nir import import_from_nir

    module = import_from_nir(graph)
    recorded: dict[str, list] = {}
    for name, sub in module.named_modules():
        if name.endswith("_lif"):
            sub.register_forward_hook(
                lambda _m, _i, out, name=name[:-len("_lif")]: recorded.setdefault(name, []).append(int(out.sum())))
    readouts = []
    with torch.no_grad():
        for sample in np.asarray(x, dtype=np.float32):
            snntorch_utils.reset(module)
            total = 0.0
            for _ in range(timesteps):
                out = module(torch.from_numpy(sample))
                total = total + (out[0] if isinstance(out, tuple) else out).numpy()
            readouts.append(total / timesteps)
    return {name: sum(values) for name, values in recorded.items()}, np.stack(readouts)


def assert_counts_agree(ours: dict[str, np.ndarray], theirs: dict[str, int], label: str) -> dict[str, tuple]:
    figures = {}
    for layer, spikes in ours.items():
        mine, other = int(spikes.sum()), theirs[layer.replace(".", "_")]
        figures[layer] = (mine, other)
        assert abs(mine - other) <= TOLERANCE * max(mine, 1), f"{label}: layer {layer}: ours {mine}, snnTorch {other}"
    print(f"{label}: spikes on {SAMPLES} samples (ours, snnTorch): {figures}")
    return figures


@pytest.fixture(scope="module")
def mlp(trained_checkpoint, digits):
    frozen = freeze(load_checkpoint(trained_checkpoint))
    return frozen, calibrate_per_layer(frozen, digits.x_train[:128])


def test_mlp_round_trip_mapping_and_collapse_warning(mlp, tmp_path):
    frozen, per_layer = mlp
    path = tmp_path / "mlp.nir"
    with pytest.warns(UserWarning, match=r"layer 'fc1': NIR cannot express a per-timestep threshold schedule"):
        info = write_nir(frozen, path, per_layer)
    graph = nir.read(path)
    assert_graphs_equal(graph, _quiet_build(frozen, per_layer))
    assert sorted(graph.edges) == sorted([("input", "fc1.synapse"), ("fc1.synapse", "fc1.lif"),
                                          ("fc1.lif", "readout.synapse"), ("readout.synapse", "output")])
    lif, layer = graph.nodes["fc1.lif"], frozen.layers[0]
    dt = float(graph.metadata["dt"])
    assert dt == DEFAULT_DT and int(graph.metadata["timesteps"]) == frozen.timesteps
    np.testing.assert_allclose(1.0 - dt / lif.tau, layer.tau, rtol=1e-12)  # beta = tau
    np.testing.assert_allclose(lif.r * dt / lif.tau, 1.0, rtol=1e-12)  # input enters unscaled
    np.testing.assert_array_equal(lif.v_reset, 0.0)
    np.testing.assert_array_equal(lif.v_threshold, per_layer.layers[0].threshold_schedule[0])
    np.testing.assert_array_equal(lif.metadata["dsatgo_threshold_schedule"], layer.threshold_schedule)
    assert info["collapsed_thresholds"]["fc1"]["threshold"] == pytest.approx(per_layer.layers[0].threshold_schedule[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the per-layer policy's network needs no collapse
        build_nir(per_layer)


def test_export_target_nir_records_the_mapping_in_the_manifest(trained_checkpoint, digits, tmp_path):
    with pytest.warns(UserWarning, match="layer 'fc1'"):
        export_checkpoint(trained_checkpoint, tmp_path / "out", target="nir", calibration_x=digits.x_train[:64])
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    entry = manifest["nir"]
    assert entry["file"] == NIR_FILE and entry["dt"] == DEFAULT_DT and entry["timesteps"] == 4
    assert "tau_mem = dt / (1 - tau)" in entry["neuron_mapping"] and "mean over the T steps" in entry["readout"]
    assert list(entry["collapsed_thresholds"]) == ["fc1"]
    assert manifest["files"][NIR_FILE] == sha256_file(tmp_path / "out" / NIR_FILE)
    assert set(nir.read(tmp_path / "out" / NIR_FILE).nodes) == {"input", "fc1.synapse", "fc1.lif",
                                                                "readout.synapse", "output"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert export_main([str(trained_checkpoint), "--target", "nir", "--out", str(tmp_path / "cli"),
                            "--calibrate", "16"]) == 0
    assert (tmp_path / "cli" / NIR_FILE).is_file()


def _residual_network() -> FrozenNetwork:
    """conv -> conv -> conv(sum of both: a folded residual ADD) -> dense (after a flatten) -> readout."""
    rng = np.random.default_rng(3)

    def conv(name, sources, c_in, c_out, size, stride=1):
        weight = rng.normal(0, 0.6, (c_out, c_in, 3, 3))
        return FrozenLayer(name, sources, weight, rng.normal(0.1, 0.1, c_out), 0.6, np.full(3, 1.0),
                           FrozenConv((c_in, size, size), (stride, stride), (1, 1)))

    layers = [conv("c1", ["input"], 2, 4, 6), conv("c2", ["c1"], 4, 4, 6), conv("c3", ["c2", "c1"], 4, 3, 6, 2),
              FrozenLayer("d1", ["c3"], rng.normal(0, 0.5, (12, 27)), np.zeros(12), 0.4, np.full(3, 0.8)),
              FrozenLayer("readout", ["d1"], rng.normal(0, 0.5, (5, 12)), np.zeros(5), None, None)]
    return FrozenNetwork(3, (2, 6, 6), layers)


def test_residual_add_becomes_edges_and_snntorch_runs_it(tmp_path):
    frozen = _residual_network()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constant thresholds: nothing to collapse
        write_nir(frozen, tmp_path / "res.nir")
    graph = nir.read(tmp_path / "res.nir")
    assert_graphs_equal(graph, build_nir(frozen)[0])
    assert {("c1.lif", "c3.synapse"), ("c2.lif", "c3.synapse"), ("c3.lif", "d1.flatten"),
            ("d1.flatten", "d1.synapse")} <= set(graph.edges)
    x = np.random.default_rng(4).uniform(0, 1, (SAMPLES, 2, 6, 6))
    readout, spikes, _ = run_frozen(frozen, x)
    assert all(s.sum() > 0 for s in spikes.values())
    counts, their_readout = snntorch_run(graph, x, frozen.timesteps)
    assert_counts_agree(spikes, counts, "residual net")
    np.testing.assert_allclose(their_readout, readout, atol=1e-4)


def test_snntorch_imports_the_digits_mlp_and_spikes_like_our_frozen_model(mlp, digits):
    frozen, per_layer = mlp
    graph = _quiet_build(frozen, per_layer)
    x = digits.x_test[:SAMPLES]
    counts, readout = snntorch_run(graph, x, frozen.timesteps)
    ours_readout, ours, _ = run_frozen(per_layer, x)  # what the NIR graph expresses: per-layer thresholds
    assert_counts_agree(ours, counts, "digits MLP vs frozen (per-layer thresholds)")
    assert (readout.argmax(1) == ours_readout.argmax(1)).mean() >= 0.95
    _, schedule, _ = run_frozen(frozen, x)  # the DS-ATGO schedule itself: what collapsing costs
    print("digits MLP, frozen with its schedule:", {k: int(v.sum()) for k, v in schedule.items()})


def test_snntorch_imports_a_digits_conv_net(tmp_path, digits):
    arch = convnet_architecture((1, 8, 8), 10, 3, NEURON, channels=(8, "pool", 16), hidden=(32,))
    checkpoint = settled_checkpoint(arch, digits.x_train[:64].reshape(-1, 1, 8, 8), passes=4)
    for name in ("conv1", "conv2", "fc1"):  # lowered so that every layer of the untrained net fires
        checkpoint["state_dict"][f"neurons.{name}.running_threshold"] *= 0.2
    save_checkpoint(tmp_path / "conv.pt", arch, checkpoint["state_dict"], {"dataset": "digits"})
    frozen = freeze(load_checkpoint(tmp_path / "conv.pt"))
    x = digits.x_test[:SAMPLES].reshape(-1, 1, 8, 8)
    per_layer = calibrate_per_layer(frozen, digits.x_train[:32].reshape(-1, 1, 8, 8))
    graph = _quiet_build(frozen, per_layer)
    assert {"conv1.synapse", "conv2.synapse", "fc1.flatten"} <= set(graph.nodes)
    counts, readout = snntorch_run(graph, x, frozen.timesteps)
    ours_readout, ours, _ = run_frozen(per_layer, x)
    assert all(s.sum() > 0 for s in ours.values())
    assert_counts_agree(ours, counts, "digits conv net vs frozen (per-layer thresholds)")
    assert (readout.argmax(1) == ours_readout.argmax(1)).mean() >= 0.95
    _, schedule, _ = run_frozen(frozen, x)
    print("digits conv net, frozen with its schedule:", {k: int(v.sum()) for k, v in schedule.items()})


def test_a_decay_without_leak_fails_naming_the_layer():
    frozen = FrozenNetwork(2, (4,), [FrozenLayer("fc", ["input"], np.ones((3, 4)), np.zeros(3), 1.5, np.ones(2)),
                                     FrozenLayer("readout", ["fc"], np.ones((2, 3)), np.zeros(2), None, None)])
    with pytest.raises(UserError, match=r"layer 'fc': decay tau = 1.5 has no NIR LIF time constant"):
        build_nir(frozen)
    frozen.layers[0].tau = 1.0  # no leak at all (an imported NIR IF node): written back as an IF
    assert type(build_nir(frozen)[0].nodes["fc.lif"]).__name__ == "IF"
