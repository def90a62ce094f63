"""Reports: conv and residual counts against hand calculations, latency, report.json, rendering, the report command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dsatgo_deploy.cli import main
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.hardware_sim import report
from dsatgo_deploy.hardware_sim.counts import count_operations
from dsatgo_deploy.hardware_sim.energy import estimate_energy
from dsatgo_deploy.hardware_sim.ladder import Rung, summarize_ladder
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.hardware_sim.report.build import counts_report
from dsatgo_deploy.network import ConvGeometry, DeployableNetwork, InputEncoding, Layer
from dsatgo_deploy.pipeline import reports
from dsatgo_deploy.profiles import BUILTIN_PROFILES, load_profile
from dsatgo_deploy.runs import RunRecord
from tests.hardware_sim.test_counts import tiny_counts
from tests.hardware_sim.test_report_schema import assert_valid_report

T = 2
SHAPE = (1, 3, 3)


def conv(name, sources, kernel, padding=1, bits=0, stride=1, dilation=1, input_shape=SHAPE, threshold=100):
    kernel = np.asarray(kernel)
    return Layer(name=name, sources=list(sources), weight=kernel, weight_exp=0, bias_mant=np.zeros(len(kernel)),
                 bias_exp=0, threshold_schedule=[threshold], current_decay=1024, voltage_decay=1024,
                 input_message_bits=bits, kind="conv",
                 conv=ConvGeometry(input_shape, (stride, stride), (padding, padding), (dilation, dilation)))


# c's kernel: non-zero taps (i, j) marked 1     r's kernel: taps (0, 0) and (2, 2) only
#   0 1 0                                          1 0 0
#   1 1 1                                          0 0 0
#   0 1 1                                          0 0 1
C_KERNEL = np.array([[0, 2, 0], [2, 2, 2], [0, 2, 4]]).reshape(1, 1, 3, 3)
R_KERNEL = np.array([[6, 0, 0], [0, 0, 0], [0, 0, 8]]).reshape(1, 1, 3, 3)
READOUT_W = np.zeros((2, 9), dtype=int)
READOUT_W[:, 4] = [2, 4]  # r's centre neuron (1, 1) -> both outputs
READOUT_W[0, 0] = 6


def conv_net():
    """input (1,3,3) -s: 1x1 conv-> s (1,3,3) -3x3 pad 1-> c -+
                                        s ---------------------+--3x3 pad 1 (residual: s + c)-> r -dense-> readout"""
    net = DeployableNetwork(timesteps=T, input_shape=SHAPE, input_encoding=InputEncoding(), layers=[
        conv("s", ["input"], np.full((1, 1, 1, 1), 2), padding=0, bits=8),
        conv("c", ["s"], C_KERNEL),
        conv("r", ["s", "c"], R_KERNEL),
        Layer(name="readout", sources=["r"], weight=READOUT_W, weight_exp=0, bias_mant=np.zeros(2), bias_exp=0,
              threshold_schedule=[], current_decay=1024, voltage_decay=1024, spiking=False)])
    net.validate()
    return net


def spike_map(*positions_per_step):
    """(1, T, 9) spikes from lists of (row, col) per timestep."""
    out = np.zeros((1, T, 9), dtype=bool)
    for t, positions in enumerate(positions_per_step):
        for r, c in positions:
            out[0, t, 3 * r + c] = True
    return out


PAYLOADS = np.array([[[1, 0, 0], [0, 3, 0], [0, 0, 0]]]).reshape(1, -1)
SPIKES = {"s": spike_map([(0, 0), (1, 1)], [(2, 2)]),
          "c": spike_map([], [(0, 0)]),
          "r": spike_map([(1, 1)], [])}

# Hand counts. A spike at input (r, c) reaches output (r - i + 1, c - j + 1) through tap (i, j) (padding 1),
# if that output lies inside the 3x3 map: a corner spike reaches fewer outputs than a centre one.
#
# s (1x1 kernel, input payloads 1 and 3 non-zero, the same every step): synops [2, 2];
#   active: the two fed neurons, plus the spike at (2, 2) in t1 -> [2, 3]; spikes [2, 1]
# c (source s, kernel C):
#   t0: s(0,0) corner: in-bounds taps (i, j <= 1) non-zero: (0,1) (1,0) (1,1) = 3 -> outputs (1,0) (0,1) (0,0)
#       s(1,1) centre: all 6 non-zero taps -> outputs (2,1) (1,2) (1,1) (1,0) (0,1) (0,0)
#       synops 3 + 6 = 9; active: union = 6 outputs; no c spike
#   t1: s(2,2) corner: taps i, j >= 1 non-zero: (1,1) (1,2) (2,1) (2,2) = 4 -> outputs (2,2) (2,1) (1,2) (1,1)
#       synops 4; active 4 + c's own spike at (0,0) = 5
# r (sources s and c, each through kernel R: tap (0,0) -> output (r+1, c+1), tap (2,2) -> (r-1, c-1)):
#   t0: s(0,0): (1,1) only = 1; s(1,1): (2,2) and (0,0) = 2; c silent -> synops 3, active {(1,1),(2,2),(0,0)} = 3
#       (r's spike at (1,1) is among them)
#   t1: s(2,2): (1,1) via tap (2,2) = 1; c(0,0): (1,1) via tap (0,0) = 1 -> synops 2 (one per source), active 1
# readout (dense, source r): t0 r(1,1) = neuron 4, column 4 has 2 non-zero weights -> synops [2, 0], active [2, 0]
EXPECT = {
    "s": dict(synops=[2, 2], active_updates=[2, 3], spikes=[2, 1]),
    "c": dict(synops=[9, 4], active_updates=[6, 5], spikes=[0, 1]),
    "r": dict(synops=[3, 2], active_updates=[3, 1], spikes=[1, 0]),
    "readout": dict(synops=[2, 0], active_updates=[2, 0], spikes=[0, 0]),
}
# Connections (ANN MACs): s 9 (1x1); c and r: in-bounds taps of a 3x3 kernel with padding 1 on 3x3:
#   4 corners x 4 + 4 edges x 6 + centre 9 = 49; readout 2 x 9 = 18. Total 125.
# Synapses: c, per output: (0,0) 4, (0,1) 5, (0,2) 3, (1,0) 5, (1,1) 6, (1,2) 4, (2,0) 3, (2,1) 4, (2,2) 3 = 37;
#   r: tap (0,0) valid for 4 outputs, tap (2,2) for 4 = 8; readout: 3 non-zero weights.
CONNECTIONS = {"s": (9, 9), "c": (49, 37), "r": (49, 8), "readout": (18, 3)}
DEPTHS = {"s": 1, "c": 2, "r": 3, "readout": 4}


def conv_counts():
    return count_operations(conv_net(), SPIKES, PAYLOADS)


def test_conv_and_residual_counts_match_hand_calculation():
    counts = conv_counts()
    for lc in counts.layers:
        for field, want in EXPECT[lc.name].items():
            assert getattr(lc, field).tolist() == want, (lc.name, field)
        assert (lc.connections, lc.synapses) == CONNECTIONS[lc.name], lc.name
        assert lc.ann_macs == CONNECTIONS[lc.name][0] and lc.depth == DEPTHS[lc.name]
    assert [lc.sources for lc in counts.layers][2] == ("s", "c") and counts.depth == 4
    assert sum(lc.ann_macs for lc in counts.layers) == 125
    # A dense view of the same kernels would charge every spike all non-zero taps (6 for c):
    # border effects make c's t0 count 9, not 12, and t1's 4, not 6.
    assert counts.layers[1].synops.sum() == 13


def profile_file(tmp_path, kind="neuromorphic", **constants):
    def const(value, unit="pJ"):
        return {"value": value, "unit": unit, "source": "test", "status": "assumption", "note": ""}

    if kind == "neuromorphic":
        base = dict(synaptic_op=const(2.0), neuron_update_active=const(0.5), neuron_update_inactive=const(0.25),
                    spike_within_tile=const(1.0))
    else:
        base = dict(ac=const(0.5), mac=const(2.0))
    base.update({k: const(*v) if isinstance(v, tuple) else const(v) for k, v in constants.items()})
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps({"name": kind[:5], "description": "hand", "kind": kind, "constants": base}))
    return load_profile(path)


def test_conv_and_residual_energy_match_hand_calculation(tmp_path):
    est = estimate_energy(conv_counts(), profile_file(tmp_path))
    # updates per layer: 9 neurons x 2 steps = 18 (readout 2 x 2 = 4); inactive = updates - active
    # s:       synops 4 x 2 + active 5 x 0.5 + inactive 13 x 0.25 + spikes 3 x 1 = 8 + 2.5 + 3.25 + 3 = 16.75
    # c:       13 x 2 + 11 x 0.5 + 7 x 0.25 + 1 = 26 + 5.5 + 1.75 + 1                              = 34.25
    # r:       5 x 2 + 4 x 0.5 + 14 x 0.25 + 1 = 10 + 2 + 3.5 + 1                                   = 16.5
    # readout: 2 x 2 + 2 x 0.5 + 2 x 0.25 + 0 = 4 + 1 + 0.5                                        = 5.5
    assert [le.snn_pj for le in est.layers] == [16.75, 34.25, 16.5, 5.5] and est.snn_total_pj == 73.0
    digital = estimate_energy(conv_counts(), profile_file(tmp_path, "digital"))
    # SNN: s graded 4 x 2 (MAC) + (13 + 5 + 2) x 0.5 = 8 + 10 = 18; ANN: 125 MACs x 2 = 250
    assert (digital.snn_total_pj, digital.ann_pj) == (18.0, 250.0)


def test_latency_hand_calculation(tmp_path):
    profile = profile_file(tmp_path, time_synaptic_op=(1.0, "ns"), time_neuron_update_active=(1.0, "ns"),
                           time_neuron_update_inactive=(0.0, "ns"), time_spike_within_tile=(0.0, "ns"))
    latency = estimate_energy(conv_counts(), profile).latency
    # tau_L(t) = synops + active: s [4, 5], c [15, 9], r [6, 3], readout [4, 0]; serial sum = 46
    # wall step w runs layer L's step w - depth(L): w1 s 4; w2 max(s 5, c 15); w3 max(c 9, r 6); w4 max(r 3, ro 4); w5 0
    assert (latency.timesteps, latency.depth, latency.wall_steps) == (2, 4, 6)
    assert (latency.serial_ns, latency.layer_parallel_ns) == (46.0, 4 + 15 + 9 + 4)
    assert latency.per_layer_ns == {"s": 9.0, "c": 24.0, "r": 9.0, "readout": 4.0}
    untimed = estimate_energy(conv_counts(), profile_file(tmp_path)).latency
    assert untimed.serial_ns is None and untimed.wall_steps == 6 and "time_synaptic_op" in untimed.note
    loihi1 = estimate_energy(conv_counts(), load_profile("loihi1")).latency
    # 3.5 ns per synop, 8.4 / 5.3 per active / inactive update, 2.1 per spike: s = 4 x 3.5 + 5 x 8.4 + 13 x 5.3 + 3 x 2.1
    assert math.isclose(loihi1.per_layer_ns["s"], 14 + 42 + 68.9 + 6.3, rel_tol=1e-12)


def test_time_constant_needs_ns(tmp_path):
    with pytest.raises(UserError, match=r"field 'constants.time_synaptic_op.unit': must be ns, got 'pJ'"):
        profile_file(tmp_path, time_synaptic_op=(1.0, "pJ"))


def test_conv_counts_match_brute_force_on_simulated_spikes():
    """Stride 2, dilation 2, padding 1, two channels, two sources: counts against explicit loops."""
    rng = np.random.default_rng(1)
    shape = (2, 5, 6)

    def kernel(c_out):
        return (rng.integers(1, 5, (c_out, 2, 3, 3)) * 2 * (rng.random((c_out, 2, 3, 3)) < 0.5)).astype(int)

    k1, k2 = kernel(2), kernel(2)
    first = conv("a", ["input"], kernel(2), bits=8, input_shape=shape, threshold=3)
    b = conv("b", ["a"], k1, input_shape=shape, threshold=2)
    c = conv("c", ["a", "b"], k2, stride=2, dilation=2, input_shape=shape, threshold=2)  # padding 1
    out_shape = c.output_shape
    readout = Layer(name="o", sources=["c"], weight=rng.integers(-3, 4, (3, int(np.prod(out_shape)))) * 2,
                    weight_exp=0, bias_mant=np.zeros(3), bias_exp=0, threshold_schedule=[], current_decay=0,
                    voltage_decay=0, spiking=False)
    net = DeployableNetwork(timesteps=3, input_shape=shape, input_encoding=InputEncoding(step=1 / 16),
                            layers=[first, b, c, readout])
    net.validate()
    x = rng.random((4, *shape)) * (rng.random((4, *shape)) < 0.6)
    result = simulate(net, x)
    payloads = net.encode_input(x)
    counts = count_operations(net, result.spikes, payloads)
    assert counts.layers[2].spikes.sum() > 0 and counts.layers[1].spikes.sum() > 0  # the check is not vacuous
    _, ho, wo = out_shape
    synops = np.zeros(3, int)
    active = np.zeros(3, int)
    connections = synapses = 0
    for o in range(2):
        for y in range(ho):
            for xo in range(wo):
                for ci in range(2):
                    for i in range(3):
                        for j in range(3):
                            r, col = y * 2 + i * 2 - 1, xo * 2 + j * 2 - 1
                            if 0 <= r < 5 and 0 <= col < 6:
                                connections += 1
                                synapses += k2[o, ci, i, j] != 0
    for n in range(4):
        for t in range(3):
            for o in range(2):
                for y in range(ho):
                    for xo in range(wo):
                        hits = 0
                        for source in ("a", "b"):
                            m = result.spikes[source][n, t].reshape(shape)
                            for ci in range(2):
                                for i in range(3):
                                    for j in range(3):
                                        r, col = y * 2 + i * 2 - 1, xo * 2 + j * 2 - 1
                                        if 0 <= r < 5 and 0 <= col < 6 and m[ci, r, col] and k2[o, ci, i, j]:
                                            hits += 1
                        synops[t] += hits
                        active[t] += bool(hits or result.spikes["c"][n, t].reshape(2, ho, wo)[o, y, xo])
    lc = counts.layers[2]
    assert lc.synops.tolist() == synops.tolist() and lc.active_updates.tolist() == active.tolist()
    assert (lc.connections, lc.synapses) == (connections, int(synapses)) and lc.ann_macs == connections


# --------------------------------------------------------------------------- rendering


def tiny_report(tmp_path, with_ladder=True):
    net = conv_net()
    record = RunRecord("reference", SPIKES, np.array([1]))
    profiles = ["loihi1", profile_file(tmp_path, "digital")]
    x = PAYLOADS.reshape(1, *SHAPE) / 255.0
    ladder = None
    if with_ladder:
        rungs = [Rung("float_adaptive", "a", record), Rung("lava", "b", None, "not run")]
        ladder = summarize_ladder(rungs, net, x, np.array([1]), profiles)
    built = report.build_report(net, x, np.array([1]), profiles=profiles, record=record, ladder=ladder, source="tiny")
    return json.loads(json.dumps(built))


def test_build_report_counts_the_given_run(tmp_path):
    built = tiny_report(tmp_path)
    assert built["engine"] == "reference" and built["accuracy"] == 1.0
    assert built["totals"]["synops"] == 4 + 13 + 5 + 2 and built["totals"]["ann_macs"] == 125
    assert built["latency"] == {"timesteps": 2, "depth": 4, "wall_steps": 6}
    assert built["layers"][2]["sources"] == ["s", "c"] and built["layers"][1]["synapses"] == 37
    loihi = built["energy"][0]
    assert loihi["latency"]["serial_ns"] > 0 and "time_synaptic_op" in loihi["constants_used"]
    assert built["ladder"]["rungs"][0]["spikes_per_inference"] == 3 + 1 + 1
    assert_valid_report(built)


def test_counts_report_is_json_and_sums_the_layers():
    counts = tiny_counts()
    estimates = [estimate_energy(counts, load_profile(name)) for name in BUILTIN_PROFILES]
    built = json.loads(json.dumps(counts_report(counts, estimates)))  # JSON-able
    assert built["totals"]["synops"] == 11 and built["totals"]["ann_macs"] == 12
    assert built["layers"][0]["per_timestep"]["spikes"] == [0.5, 2, 1]
    assert built["layers"][0]["per_inference"]["firing_rate"] == 3.5 / 9
    assert built["layers"][1]["per_inference"]["firing_rate"] is None
    loihi = built["energy"][0]
    assert loihi["totals"]["static_pj"] is None and "Davies" in loihi["constants_used"]["synaptic_op"]["source"]
    assert built["energy"][2]["totals"]["ann_over_snn"] == pytest.approx(55.2 / 37.65)


def test_markdown_names_every_constant_and_its_source(tmp_path):
    built = tiny_report(tmp_path)
    files = report.render(built, tmp_path / "out")
    names = sorted(f.name for f in files)
    assert names == ["report.md", "report_energy_per_layer.png", "report_firing_rate.png", "report_ladder.png",
                     "report_loihi2_system.png"]
    for f in files[1:]:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000
    text = (tmp_path / "out" / "report.md").read_text()
    for heading in ("## Summary", "## Accuracy ladder", "## Operations per inference, per layer",
                    "## Firing rate per layer and timestep", "## Energy per inference, per layer",
                    "## Latency per inference", "## Loihi 2 system model", "## Constants and their sources",
                    "## Assumptions and uncertainty"):
        assert heading in text
    # every energy row shows count x named constant; the hand-computed c layer: 13 synops x 23.6 pJ = 306.8 pJ
    assert "| c | SNN | synaptic ops | 13 | `synaptic_op` = 23.6 pJ | 306.80 |" in text
    assert "`dsatgo_deploy/profiles/loihi1.json`" in text and "Davies" in text and "Table 2" in text
    assert "| `mac` | 2 | pJ | assumption | test |" in text
    assert "![firing rate per layer and timestep](report_firing_rate.png)" in text
    assert "not run" in text and "static not modelled" in text


def test_html_is_self_contained(tmp_path):
    built = tiny_report(tmp_path, with_ladder=False)
    files = report.render(built, tmp_path, fmt="html")
    page = files[0].read_text()
    assert files[0].name == "report.html" and page.count("data:image/png;base64,") == 3
    assert "src='report_" not in page and "<table>" in page and "<code>synaptic_op</code>" in page
    with pytest.raises(UserError, match="unknown report format"):
        report.render(built, tmp_path, fmt="pdf")


def test_terminal_table_is_compact(tmp_path):
    text = report.format_terminal(tiny_report(tmp_path))
    assert len(text.splitlines()) < 20
    assert "readout" in text and "total" in text and "6 wall steps" in text and "Accuracy ladder" in text


def test_load_report_refuses_other_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(UserError, match=r"x\.json: not a dsatgo report"):
        report.load_report(path)
    path.write_text(json.dumps({"format": "dsatgo-energy-report", "format_version": 1}))
    with pytest.raises(UserError, match=r"x\.json: a report of an earlier version, before schema_version 1"):
        report.load_report(path)
    path.write_text(json.dumps({**tiny_report(tmp_path), "schema_version": 99}))
    with pytest.raises(UserError, match=r"x\.json: field 'schema_version': 99, this version reads 1"):
        report.load_report(path)
    path.write_text("{")
    with pytest.raises(UserError, match=r"x\.json: not valid JSON"):
        report.load_report(path)
    with pytest.raises(UserError, match="no such report file"):
        report.load_report(tmp_path / "absent.json")
    built = tiny_report(tmp_path)
    del built["totals"]
    path.write_text(json.dumps(built))
    with pytest.raises(UserError, match=r"x\.json: field 'totals' is missing"):
        report.load_report(path)


# --------------------------------------------------------------------------- the command


def test_report_command_with_ladder_and_rerender(exported, trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "r" / "report.json"
    assert main(["report", str(exported.out_dir), "--samples", "40", "--out", str(out), "--model",
                 str(trained_checkpoint), "--calibrate", "64", "--profile", "loihi1", "cmos45nm"]) == 0
    printed = capsys.readouterr().out
    assert "Accuracy ladder" in printed and "report.md" in printed
    data = json.loads(out.read_text())
    assert_valid_report(data)
    assert [r["name"] for r in data["ladder"]["rungs"]] == ["float_adaptive", "float_schedule", "float_per_layer",
                                                          "quantized_reference", "lava"]
    assert data["ladder"]["rungs"][3]["accuracy"] == data["accuracy"]
    assert (out.parent / "report_ladder.png").is_file() and (out.parent / "report.md").is_file()
    (out.parent / "report.md").unlink()
    assert main(["report", str(out), "--format", "html"]) == 0
    assert (out.parent / "report.html").is_file() and not (out.parent / "report.md").exists()
    before = out.read_bytes()
    assert main(["report", str(out), "--system", "hala-point", "--chips", "2"]) == 2  # not silently ignored
    assert "--system, --chips need the network" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["report", str(exported.out_dir), "--lava"]) == 2
    assert "needs --model" in capsys.readouterr().err


def test_export_and_sim_report_helpers(exported, trained_checkpoint, digits, tmp_path):
    import dataclasses

    from dsatgo_deploy.checkpoint import load_checkpoint
    from dsatgo_deploy.pipeline.sides import run_reference

    result = dataclasses.replace(exported, out_dir=tmp_path / "export")  # leave the shared export folder alone
    x, y = digits.x_test[:30], digits.y_test[:30]
    built, files = reports.write_export_report(result, load_checkpoint(trained_checkpoint), x, y,
                                              calibration_x=digits.x_train[:32], profiles=["loihi1"])
    assert files[0] == tmp_path / "export" / "report" / "report.json" and all(f.is_file() for f in files)
    assert len(built["ladder"]["rungs"]) == 5 and built["network"]["source"] == str(tmp_path / "export")
    assert_valid_report(json.loads(files[0].read_text()))
    record = run_reference(exported.network, x)  # as `dsatgo sim --report` has it
    built, files = reports.write_network_report(exported.network, x, y, tmp_path / "sim", record=record,
                                               profiles=["cmos45nm"])
    assert built["engine"] == "reference" and "ladder" not in built and len(files) == 5
    assert_valid_report(json.loads(files[0].read_text()))
