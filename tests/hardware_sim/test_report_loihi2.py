"""Every report carries the Loihi 2 system model: on our export and on a file in lava-dl's netx
layout, report.json's ``loihi2_system`` equals hardware_sim.loihi2_report.system_figures of the same
network and counts; it is rendered (table per layer, plot, terminal lines) and a system too small is
refused before any run."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from dsatgo_deploy.cli import main
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.hardware_sim.counts import count_operations
from dsatgo_deploy.hardware_sim.loihi2_report import choose_system, system_figures
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.importers.netx import read_netx
from dsatgo_deploy.network import DeployableNetwork, InputEncoding, Layer
from dsatgo_deploy.pipeline import reports
from tests.hardware_sim.test_report_schema import assert_valid_report


def expected_figures(net: DeployableNetwork, x: np.ndarray, system: str | None, chips: int | None) -> dict:
    """system_figures of ``net`` on the reference simulator's run on x, as report.json holds it."""
    counts = count_operations(net, simulate(net, x).spikes, net.encode_input(x))
    return json.loads(json.dumps(system_figures(net, counts, "loihi2", system, chips)))


def test_report_of_our_export_on_kapoho_point(exported, digits, tmp_path, capsys):
    out = tmp_path / "r" / "report.json"
    assert main(["report", str(exported.out_dir), "--samples", "20", "--out", str(out), "--profile", "cmos45nm",
                 "--system", "kapoho-point"]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert_valid_report(data)
    section = data["loihi2_system"]
    assert section.pop("selection") == "requested (--system kapoho-point)"
    assert section == expected_figures(exported.network, digits.x_test[:20], "kapoho-point", None)
    # the 64-64-10 MLP: one core per layer, on one of Kapoho Point's 8 chips
    assert [(l["name"], l["cores"], l["limited_by"]) for l in section["layers"]] == [
        ("fc1", 1, "fits one core"), ("readout", 1, "fits one core")]
    assert (section["system"], section["system_chips"], section["chips"], section["total_cores"]) == (
        "Kapoho Point (8 chips)", 8, 1, 2)
    # static energy: 0.232 W for the one chip used (not 8) over one inference; mJ = W x ms
    assert section["energy_mj"]["static"] == pytest.approx(0.232 * section["inference_ms"], rel=1e-12)
    assert section["inferences_per_s"] == pytest.approx(1e3 / section["inference_ms"], rel=1e-12)
    assert section["interchip_spikes_per_inference"] == 0.0 and section["profile"] == "loihi2"
    assert section["facts"]["neurons_per_core"]["status"] == "fitted" and "PilotNet" in section["facts"]["neurons_per_core"]["source"]
    assert "Loihi 2 system model: 2 cores on 1 chip(s) of Kapoho Point (8 chips)" in printed
    assert "cores per layer: fc1 1, readout 1" in printed
    text = (out.parent / "report.md").read_text()
    assert "## Loihi 2 system model" in text and "| fc1 | 64 | 1 | 64 | 1 | fits one core |" in text
    assert "![Loihi 2 cores and time per timestep, per layer](report_loihi2_system.png)" in text
    assert (out.parent / "report_loihi2_system.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _lava_dl_netx(path, rng):
    """A file in lava-dl's netx layout (what slayer's export_hdf5 writes; slayer itself needs OpenCV,
    not installed here): input (1, 8, 8) -> conv 4 channels 3x3 pad 1 -> flatten -> dense 100 -> dense 10,
    CUBA neurons, no root attributes (so no T or input encoding: the command line gives them)."""
    def neuron(group, v_th):
        for key, value in {"type": b"CUBA", "vThMant": v_th, "iDecay": 1024, "vDecay": 512, "refDelay": 1,
                           "gradedSpike": False}.items():
            group.create_dataset(f"neuron/{key}", data=value)

    with h5py.File(path, "w") as h5:
        layers = h5.create_group("layer")
        entry = layers.create_group("0")
        entry.create_dataset("type", data=np.array([b"input"]))
        entry.create_dataset("shape", data=np.array([1, 8, 8]))
        conv = layers.create_group("1")
        conv.create_dataset("type", data=np.array([b"conv"]))
        conv.create_dataset("shape", data=np.array([4, 8, 8]))
        conv.create_dataset("weight", data=(2 * rng.integers(-20, 60, (4, 1, 3, 3))).astype(np.float32))
        for key, value in dict(stride=1, padding=1, dilation=1, groups=1, inChannels=1, outChannels=4).items():
            conv.create_dataset(key, data=value)
        conv.create_dataset("kernelSize", data=np.array([3, 3]))
        neuron(conv, 200)
        layers.create_group("2").create_dataset("type", data=np.array([b"flatten"]))
        for index, (n_out, n_in) in ((3, (100, 256)), (4, (10, 100))):
            dense = layers.create_group(str(index))
            dense.create_dataset("type", data=np.array([b"dense"]))
            dense.create_dataset("shape", data=np.array([n_out]))
            dense.create_dataset("weight", data=(2 * rng.integers(-40, 60, (n_out, n_in))).astype(np.float32))
            neuron(dense, 300)


def test_report_of_a_lava_dl_netx_file_on_two_chips(digits, tmp_path, capsys):
    path = tmp_path / "model.net"
    _lava_dl_netx(path, np.random.default_rng(0))
    out = tmp_path / "r" / "report.json"
    assert main(["report", str(path), "--timesteps", "4", "--input-bits", "8", "--input-shape", "1,8,8",
                 "--dataset", "digits", "--samples", "12", "--profile", "loihi2", "--chips", "2",
                 "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == json.loads(out.read_text())
    assert_valid_report(data)
    section = data["loihi2_system"]
    assert section.pop("selection") == "requested (--chips 2)"
    net = read_netx(path, 8, timesteps=4, input_shape=(1, 8, 8))
    x = digits.x_test[:12].reshape(12, 1, 8, 8)
    assert section == expected_figures(net, x, None, 2)
    # by hand: the conv's 256 neurons fit one core; the 256->100 dense layer keeps 23040 // 256 = 90
    # rows of 8-bit weights per core (fitted synaptic memory), so 2 cores; 100->10 fits one
    assert [(l["cores"], l["neurons_per_core"]) for l in section["layers"]] == [(1, 256), (2, 90), (1, 10)]
    assert section["layers"][1]["limited_by"] == "synaptic memory"
    assert (section["system"], section["chips"], section["total_cores"]) == ("2 Loihi 2 chips", 1, 4)
    assert section["step_us"] == max(section["layer_step_us"].values())
    assert section["slowest_layer"] == max(section["layer_step_us"], key=section["layer_step_us"].get)


def wide_net() -> DeployableNetwork:
    """One dense layer of 1200 neurons reading 2560 inputs: 9 rows per core, 134 cores (more than a chip)."""
    net = DeployableNetwork(timesteps=2, input_shape=(2560,), input_encoding=InputEncoding(), layers=[
        Layer(name="wide", sources=["input"], weight=np.ones((1200, 2560), dtype=np.int64), weight_exp=0,
              bias_mant=np.zeros(1200), bias_exp=0, threshold_schedule=[100], current_decay=1024,
              voltage_decay=1024, input_message_bits=8)])
    net.validate()
    return net


def test_the_smallest_system_is_chosen_and_one_too_small_is_refused_before_the_run(tmp_path):
    net = wide_net()
    assert choose_system(net)[:2] == ("kapoho-point", None)  # 134 cores: 2 chips, Kapoho Point the smallest
    x = np.zeros((1, 2560))
    with pytest.raises(UserError, match=r"layer 'wide': the network needs 134 Loihi 2 cores .*Kapoho Point"):
        reports.write_network_report(net, x, None, tmp_path / "r", system="loihi2")
    assert not (tmp_path / "r").exists()
    built, _ = reports.write_network_report(net, x, None, tmp_path / "r", profiles=["loihi2"], chips=2)
    assert (built["loihi2_system"]["chips"], built["loihi2_system"]["total_cores"]) == (2, 134)
    assert built["loihi2_system"]["layers"][0]["neurons_per_core"] == 9
