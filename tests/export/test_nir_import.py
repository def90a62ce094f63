"""NIR import (export/nir_import.py): files written by snnTorch 1.0.0 and Norse 1.1.0's own exporters, from
models built and run in those frameworks (tests/export/nir_models.py), deployed for Loihi.

(a) our reference simulator and Lava (fixed_pt) agree bit for bit on the imported networks;
(b) the framework's own run of the original model against our float import (spike for spike) and against
    the quantized reference (hardware_sim/parity.py compare: class and per-layer spike-count agreement);
(c) what cannot map is refused with one line naming the file, the node and the field.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.export.freeze import run_frozen
from dsatgo_deploy.export.nir_import import frozen_from_nir, import_nir
from dsatgo_deploy.hardware_sim.parity import FLOAT_MIN_CLASS_AGREEMENT, FLOAT_MIN_SPIKE_AGREEMENT, compare
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.importers import find_importer
from dsatgo_deploy.runs import RunRecord

from . import nir_models as models

STEPS = 8
CALIBRATION = 256


@pytest.fixture(scope="module")
def snntorch_mlp(digits):
    return models.train_snntorch_mlp(digits.x_train, digits.y_train, STEPS)


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits, snntorch_mlp):
    """name -> (NIR file, framework model, dt to import it with, sample shape)."""
    import torch

    folder = tmp_path_factory.mktemp("nir")
    torch.manual_seed(1)
    conv = models.SnnTorchConv()
    synaptic = models.SnnTorchSynaptic()
    with torch.no_grad():  # untrained: weights scaled so that every layer fires
        conv.conv1.weight.mul_(1.5)
        synaptic.fc1.weight.mul_(3.0)
        synaptic.fc2.weight.mul_(4.0)
    norse = models.norse_mlp_from(snntorch_mlp)
    images = digits.x_test.reshape(-1, 1, 8, 8)
    models.fit_conv_readout(conv, digits.x_train.reshape(-1, 1, 8, 8), digits.y_train, STEPS)
    return {
        "snntorch_mlp": (models.write_snntorch(snntorch_mlp, digits.x_test, folder / "mlp.nir"), snntorch_mlp,
                         models.SNNTORCH_DT, (64,)),
        "snntorch_conv": (models.write_snntorch(conv, images, folder / "conv.nir"), conv, models.SNNTORCH_DT,
                          (1, 8, 8)),
        "snntorch_synaptic": (models.write_snntorch(synaptic, digits.x_test, folder / "synaptic.nir"), synaptic,
                              models.SNNTORCH_DT, (64,)),
        # Norse 1.1.0's to_nir writes tau = dt / tau_mem_inv: read by the spec, its run is Norse's with dt**2
        "norse_mlp": (models.write_norse(norse, digits.x_test, folder / "norse.nir"), norse, models.NORSE_DT ** 2,
                      (64,)),
    }


def _framework_run(name: str, model, x: np.ndarray) -> RunRecord:
    return models.run_norse(model, x, STEPS) if name.startswith("norse") else models.run_snntorch(model, x, STEPS)


def _import(files, name: str, digits):
    path, _, dt, shape = files[name]
    net, frozen, _ = import_nir(path, dt=dt, timesteps=STEPS, input_quantum=digits.input_quantum,
                                calibration_x=digits.x_train[:CALIBRATION].reshape(-1, *shape))
    return net, frozen


@pytest.mark.parametrize("name", ["snntorch_mlp", "snntorch_conv", "norse_mlp"])
def test_float_import_spikes_as_the_framework_does(files, digits, name):
    """The imported float network (before quantization) fires exactly where snnTorch's Leaky / Norse's LIFBoxCell
    fire: the NIR equations, per-neuron thresholds rescaled into the rows, pooling folded, Norse's LI readout."""
    path, model, dt, shape = files[name]
    x = digits.x_test[:120].reshape(-1, *shape)
    theirs = _framework_run(name, model, x)
    frozen, _ = frozen_from_nir(path, dt=dt, timesteps=STEPS)
    readout, ours, _ = run_frozen(frozen, x)
    assert set(ours) == set(theirs.spikes)  # layers are named by the NIR neuron node keys
    for key in ours:
        assert ours[key].sum() > 0 and np.array_equal(ours[key], theirs.spikes[key]), key
    if readout is not None:  # Norse's LI readout: its v after T steps
        assert np.array_equal(readout.argmax(axis=1), theirs.predictions)


@pytest.mark.parametrize("name", ["snntorch_mlp", "snntorch_conv", "norse_mlp"])
def test_reference_agrees_with_the_framework_within_quantization(files, digits, name, capsys):
    """The deployed integer network against the framework's own run of the original model: predicted classes
    and per-neuron spike counts within the float-vs-integer tolerance (hardware_sim/parity.py)."""
    net, _ = _import(files, name, digits)
    _, model, _, shape = files[name]
    x = digits.x_test.reshape(-1, *shape)
    report = compare(_framework_run(name, model, x), simulate(net, x), digits.y_test)
    with capsys.disabled():
        print(f"\n{name}: classes {report.class_agreement:.2%}, accuracy {report.accuracy}, "
              + ", ".join(f"{p.layer} spikes {p.spikes} counts equal {p.spike_count_agreement:.2%}"
                          for p in report.layers) + f"; first divergence {report.first_divergence}")
    assert report.class_agreement >= FLOAT_MIN_CLASS_AGREEMENT, report.first_divergence
    for layer in report.layers:
        assert layer.spike_count_agreement >= FLOAT_MIN_SPIKE_AGREEMENT, (layer, report.first_divergence)
    if name == "snntorch_mlp":
        assert report.accuracy[1] >= 0.8  # trained: the deployed network classifies digits


def _spec_euler(graph, x: np.ndarray, dt: float, steps: int) -> dict[str, np.ndarray]:
    """The NIR spec's equations for a chain graph, stepped by forward Euler in numpy (the current updated before
    the voltage reads it); fires on v > v_threshold, then v = v_reset. Spikes per neuron node."""
    order, node = ["input"], "input"
    while node != "output":
        node = next(b for a, b in graph.edges if a == node)
        order.append(node)
    state: dict[str, dict[str, np.ndarray]] = {}
    spikes: dict[str, list[np.ndarray]] = {}
    for _ in range(steps):
        signal = x.reshape(len(x), -1)
        for key in order[1:-1]:
            n = graph.nodes[key]
            kind = type(n).__name__
            if kind in ("Affine", "Linear"):
                signal = signal @ np.asarray(n.weight, np.float64).T + (np.asarray(n.bias) if kind == "Affine" else 0)
                continue
            s = state.setdefault(key, {"v": np.zeros_like(signal), "i": np.zeros_like(signal)})
            if kind == "CubaLIF":
                s["i"] = s["i"] + dt / n.tau_syn * (-s["i"] + n.w_in * signal)
                s["v"] = s["v"] + dt / n.tau_mem * ((n.v_leak - s["v"]) + n.r * s["i"])
            else:
                s["v"] = s["v"] + dt / n.tau * ((n.v_leak - s["v"]) + n.r * signal)
            fired = s["v"] > n.v_threshold
            s["v"] = np.where(fired, n.v_reset, s["v"])
            spikes.setdefault(key, []).append(fired)
            signal = fired.astype(np.float64)
    return {key: np.stack(trains, axis=1) for key, trains in spikes.items()}


def test_cuba_lif_follows_the_nir_equations(files, digits, capsys):
    """snnTorch's Synaptic is written as a CubaLIF (tau_syn, w_in = tau_syn / dt, r = tau_mem / dt): the import
    (a synaptic current with Loihi's current decay) fires exactly where the spec's equations, stepped in numpy,
    fire. snnTorch's own Synaptic departs from them after each spike (its zero reset also drops the next step's
    input); the agreement with it is printed, the figure docs/interop.md quotes."""
    import nir

    path, model, dt, _ = files["snntorch_synaptic"]
    x = digits.x_test[:120]
    frozen, _ = frozen_from_nir(path, dt=dt, timesteps=STEPS)
    assert frozen.layers[0].current_tau == pytest.approx(0.6)
    _, ours, _ = run_frozen(frozen, x)
    spec = _spec_euler(nir.read(str(path)), x, dt, STEPS)
    for key in spec:
        assert ours[key].sum() > 0 and np.array_equal(ours[key], spec[key]), key
    report = compare(models.run_snntorch(model, x, STEPS), RunRecord("nir", ours, ours["lif2"].sum(1).argmax(1)))
    with capsys.disabled():
        print("\nsnnTorch Synaptic vs the spec's CubaLIF: classes "
              f"{report.class_agreement:.2%}, " + ", ".join(f"{p.layer} spikes {p.spikes} counts equal "
                                                              f"{p.spike_count_agreement:.2%}" for p in report.layers))


@pytest.mark.parametrize("name", ["snntorch_mlp", "norse_mlp", "snntorch_conv", "snntorch_synaptic"])
def test_reference_equals_lava_bit_for_bit(files, digits, name):
    """Imported networks on Lava (Loihi2SimCfg fixed_pt): every spike and the readout's v equal our reference's
    (a leaky readout from Norse's LI, a synaptic current from the CubaLIF, a per-channel conv)."""
    from dsatgo_deploy.hardware_sim.lava_backend import run_lava

    net, _ = _import(files, name, digits)
    x = digits.x_test[:2].reshape(-1, *files[name][3])
    ours, lava = simulate(net, x), run_lava(net, x)
    report = compare(ours, lava)
    assert report.bit_exact, report.first_divergence
    assert sum(int(s.sum()) for s in ours.spikes.values()) > 0
    if ours.readout_trace is not None:
        assert np.array_equal(ours.readout_trace, lava.readout_trace)


def test_the_nir_target_rewrites_an_imported_network(files, digits, tmp_path):
    """--target nir on an imported network (a CubaLIF, an average pool) writes our spec form: imported again, it
    fires the same spikes."""
    from dsatgo_deploy.export.nir_export import export_nir_file

    for name in ("snntorch_synaptic", "snntorch_conv"):
        path, _, dt, shape = files[name]
        out = export_nir_file(path, tmp_path / name, "nir", dt=dt, timesteps=STEPS).out_dir / "network.nir"
        x = digits.x_test[:60].reshape(-1, *shape)
        first, _ = frozen_from_nir(path, dt=dt, timesteps=STEPS)
        again, _ = frozen_from_nir(out)  # dt and T from the file's metadata
        spikes_first, spikes_again = run_frozen(first, x)[1], run_frozen(again, x)[1]
        assert list(spikes_again) == [f"{key}.lif" for key in spikes_first]  # the writer's node names
        for key in spikes_first:
            assert np.array_equal(spikes_first[key], spikes_again[f"{key}.lif"]), (name, key)


def test_detection_keeps_netx_and_nir_files_apart(files, lava_dl_files):
    assert find_importer(files["snntorch_mlp"][0]).name == "nir"
    assert find_importer(lava_dl_files / "tiny.net").name == "netx"


def test_the_onnx_target_of_imported_networks_is_integer_exact(files, digits, tmp_path):
    """--target onnx: the integer graph runs a synaptic current (CubaLIF) and a leaky readout (Norse's LI) as the
    reference does; the float graph has neither, so the folder holds the integer graph alone and says why."""
    from dsatgo_deploy.export.nir_export import export_nir_file
    from dsatgo_deploy.hardware_sim.onnx_runner import run_onnx

    for name in ("snntorch_synaptic", "norse_mlp"):
        path, _, dt, shape = files[name]
        result = export_nir_file(path, tmp_path / name, "onnx", dt=dt, timesteps=STEPS)
        assert result.manifest["onnx"]["float_file"] is None and "CubaLIF, LI or I" in result.manifest["onnx"]["float_reason"]
        x = digits.x_test[:50].reshape(-1, *shape)
        report = compare(simulate(result.network, x), run_onnx(result.out_dir / "network.onnx", x))
        assert report.bit_exact, (name, report.first_divergence)
