"""Operation counts and energy of hardware_sim.energy against hand calculations."""

import json
import math

import numpy as np
import pytest

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.hardware_sim import energy
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.network import DeployableNetwork, Layer, InputEncoding

T = 3


def layer(name, source, weight, spiking=True, bits=0):
    weight = np.asarray(weight)
    return Layer(name=name, sources=[source], weight=weight, weight_exp=0, bias_mant=np.zeros(len(weight)),
                      bias_exp=0, threshold_schedule=[100] if spiking else [], current_decay=1024,
                      voltage_decay=1024, spiking=spiking, input_message_bits=bits)


def tiny_net():
    # input (2) -> hidden (3) -> out (2). Non-zero weights per source column:
    #   hidden W = [[10, 0], [0, 0], [4, -6]]     nnz(col0) = 2 (rows 0, 2), nnz(col1) = 1 (row 2)
    #   out    W = [[20, 0, -4], [0, 0, 8]]       nnz = [1, 0, 2]; col0 -> row 0, col2 -> rows 0 and 1
    net = DeployableNetwork(timesteps=T, input_shape=(2,), input_encoding=InputEncoding(), layers=[
        layer("hidden", "input", [[10, 0], [0, 0], [4, -6]], bits=8),
        layer("out", "hidden", [[20, 0, -4], [0, 0, 8]], spiking=False)])
    net.validate()
    return net


PAYLOADS = np.array([[5, 0], [3, 7]])  # sample 0 sends only input 0; sample 1 both
HIDDEN_SPIKES = np.array([
    [[1, 0, 0], [0, 1, 0], [1, 0, 1]],   # sample 0, t = 0, 1, 2
    [[0, 0, 0], [1, 1, 1], [0, 0, 0]],   # sample 1
], dtype=bool)

# Hand calculation (per-timestep values are sums over the 2 samples; per inference = total / 2):
# hidden synops: s0 2 per step (input 0 -> 2 weights), s1 2 + 1 = 3 per step -> [5, 5, 5], total 15, 7.5
# hidden spikes: [1, 1 + 3, 2] = [1, 4, 2], total 7, 3.5
# hidden active: both samples receive input at rows {0, 2} every step; spikes add row 1 at
#   s0 t1 and s1 t1 -> s0 [2, 3, 2], s1 [2, 3, 2] -> [4, 6, 4], total 14, 7
# hidden updates: 3 neurons x 3 steps = 9 per inference; inactive 9 - 7 = 2
# out synops: s0 t0 col0 -> 1, t1 col1 -> 0, t2 col0 + col2 -> 3; s1 t1 all -> 3 -> [1, 3, 3], total 7, 3.5
# out active: s0 t0 {0} 1, t1 {} 0, t2 {0, 1} 2; s1 t1 {0, 1} 2 -> [1, 2, 2], total 5, 2.5
# out updates: 2 x 3 = 6 per inference; inactive 3.5; out spikes 0
# ANN MACs: 3 * 2 + 2 * 3 = 12
EXPECT = {
    "hidden": dict(synops=[5, 5, 5], spikes=[1, 4, 2], active_updates=[4, 6, 4], ann_macs=6),
    "out": dict(synops=[1, 3, 3], spikes=[0, 0, 0], active_updates=[1, 2, 2], ann_macs=6),
}


def tiny_counts(payloads=PAYLOADS):
    return energy.count_operations(tiny_net(), {"hidden": HIDDEN_SPIKES}, payloads)


def test_counts_match_hand_calculation():
    counts = tiny_counts()
    assert counts.samples == 2 and counts.timesteps == T and counts.input_payloads_known
    for lc in counts.layers:
        want = EXPECT[lc.name]
        for field in ("synops", "spikes", "active_updates"):
            assert lc.__getattribute__(field).tolist() == want[field], (lc.name, field)
        assert lc.ann_macs == want["ann_macs"]
    hidden, out = counts.layers
    assert (hidden.per_inference("synops"), hidden.per_inference("spikes")) == (7.5, 3.5)
    assert (hidden.per_inference("updates"), hidden.per_inference("active_updates"), hidden.per_inference("inactive_updates")) == (9, 7, 2)
    assert (out.per_inference("synops"), out.per_inference("updates"), out.per_inference("inactive_updates")) == (3.5, 6, 3.5)
    assert hidden.graded_input and not out.graded_input and hidden.nonzero_weights == 3 and out.nonzero_weights == 3


def test_unknown_payloads_assume_all_nonzero():
    # s0 now also sends input 1: 3 synops per step like s1 -> 6 per step, 18 in all, 9 per inference
    counts = tiny_counts(payloads=None)
    assert counts.layers[0].synops.tolist() == [6, 6, 6] and not counts.input_payloads_known
    assert counts.layers[1].synops.tolist() == EXPECT["out"]["synops"]


def write_profile(tmp_path, data, name="my.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def const(value, unit="pJ", status="assumption"):
    return {"value": value, "unit": unit, "source": "test", "status": status, "note": ""}


def neuromorphic(**constants):
    base = dict(synaptic_op=const(2.0), neuron_update_active=const(0.5), neuron_update_inactive=const(0.25),
                spike_within_tile=const(1.0))
    base.update(constants)
    return {"name": "exact", "description": "binary-exact values", "kind": "neuromorphic", "constants": base}


def test_neuromorphic_energy_exact(tmp_path):
    est = energy.estimate_energy(tiny_counts(), energy.load_profile(write_profile(tmp_path, neuromorphic())))
    hidden, out = est.layers
    # hidden: 7.5 * 2 + 7 * 0.5 + 2 * 0.25 + 3.5 * 1 = 15 + 3.5 + 0.5 + 3.5 = 22.5
    # out:    3.5 * 2 + 2.5 * 0.5 + 3.5 * 0.25 + 0  = 7 + 1.25 + 0.875   = 9.125
    assert (hidden.snn_pj, out.snn_pj, est.snn_dynamic_pj, est.snn_total_pj) == (22.5, 9.125, 31.625, 31.625)
    assert {t.term: t.constants for t in hidden.snn_terms} == {
        "synops": ("synaptic_op",), "neuron_updates_active": ("neuron_update_active",),
        "neuron_updates_inactive": ("neuron_update_inactive",), "spikes": ("spike_within_tile",)}
    assert est.static_pj is None and est.ann_pj is None and "graded" in " ".join(est.assumptions)
    # a graded_synaptic_op constant prices the input layer's synops: 7.5 * 4 replaces 7.5 * 2 -> +15
    est = energy.estimate_energy(tiny_counts(), energy.load_profile(write_profile(
        tmp_path, neuromorphic(graded_synaptic_op=const(4.0), static_per_timestep=const(8.0)))))
    assert est.layers[0].snn_pj == 37.5 and est.static_pj == 24.0 and est.snn_total_pj == 37.5 + 9.125 + 24.0


def test_per_timestep_sums_to_total(tmp_path):
    est = energy.estimate_energy(tiny_counts(), energy.load_profile(write_profile(tmp_path, neuromorphic())))
    hidden = est.layers[0]
    # means per step: synops 2.5 (x 2 = 5), active [2, 3, 2], inactive [1, 0, 1], spikes [0.5, 2, 1]
    # t0: 5 + 2 * 0.5 + 1 * 0.25 + 0.5 = 6.75; t1: 5 + 3 * 0.5 + 0 + 2 = 8.5; t2: 5 + 1 + 0.25 + 1 = 7.25
    assert hidden.per_timestep_pj == [6.75, 8.5, 7.25] and sum(hidden.per_timestep_pj) == hidden.snn_pj


def test_builtin_profiles_energy():
    counts = tiny_counts()
    loihi1 = energy.estimate_energy(counts, energy.load_profile("loihi1"))
    # hidden 7.5*23.6 + 7*81 + 2*52 + 3.5*1.7 = 177 + 567 + 104 + 5.95 = 853.95
    # out    3.5*23.6 + 2.5*81 + 3.5*52      = 82.6 + 202.5 + 182     = 467.1
    assert math.isclose(loihi1.layers[0].snn_pj, 853.95, rel_tol=1e-12)
    assert math.isclose(loihi1.snn_total_pj, 1321.05, rel_tol=1e-12)
    cmos = energy.estimate_energy(counts, energy.load_profile("cmos45nm"))
    # SNN: graded hidden synops as MACs 7.5 * 4.6 = 34.5, out 3.5 * 0.9 = 3.15; ANN 12 * 4.6 = 55.2
    assert math.isclose(cmos.snn_total_pj, 37.65, rel_tol=1e-12) and math.isclose(cmos.ann_pj, 55.2, rel_tol=1e-12)
    assert cmos.constants_used() == ["ac", "mac"]
    loihi2 = energy.load_profile("loihi2")
    assert {c.status for c in loihi2.constants.values()} == {"derived"} and "fitted" in loihi2.note.lower()
    # Loihi 1's ratios kept: one fitted factor for energies (0.923), one for times (0.579), 3 significant figures
    for key, c in loihi2.constants.items():
        factor = 0.9231 if c.unit == "pJ" else 0.5786
        assert math.isclose(c.value, loihi1.profile.energy(key) * factor, rel_tol=6e-3), key


def test_digital_energy_exact(tmp_path):
    data = {"name": "d", "description": "x", "kind": "digital", "constants": {"ac": const(0.5), "mac": const(2.0)}}
    est = energy.estimate_energy(tiny_counts(), energy.load_profile(write_profile(tmp_path, data)))
    # SNN: 7.5 * 2 (graded, MAC) + 3.5 * 0.5 = 16.75; ANN: (6 + 6) * 2 = 24
    assert (est.snn_total_pj, est.ann_pj, est.layers[1].ann_pj) == (16.75, 24.0, 12.0)


def test_report_dict_and_table():
    counts = tiny_counts()
    ests = [energy.estimate_energy(counts, energy.load_profile(n)) for n in energy.BUILTIN_PROFILES]
    report = json.loads(json.dumps(energy.report_dict(counts, ests)))  # JSON-able
    assert report["totals"]["synops"] == 11 and report["totals"]["ann_macs"] == 12
    assert report["layers"][0]["per_timestep"]["spikes"] == [0.5, 2, 1]
    assert report["layers"][0]["per_inference"]["firing_rate"] == 3.5 / 9 and report["layers"][1]["per_inference"]["firing_rate"] is None
    loihi = report["energy"][0]
    assert loihi["totals"]["static_pj"] is None and "Davies" in loihi["constants_used"]["synaptic_op"]["source"]
    assert report["energy"][2]["totals"]["ann_over_snn"] == pytest.approx(55.2 / 37.65)
    table = energy.format_table(report)
    assert "hidden" in table and "loihi1" in table and "cmos45nm" in table


def test_counts_match_brute_force_on_simulated_spikes():
    rng = np.random.default_rng(0)
    w1 = rng.integers(-5, 6, (6, 4)) * 2 * (rng.random((6, 4)) < 0.6)
    w2 = rng.integers(-5, 6, (3, 6)) * 2 * (rng.random((3, 6)) < 0.6)
    net = DeployableNetwork(timesteps=4, input_shape=(4,), input_encoding=InputEncoding(),
                            layers=[layer("a", "input", w1, bits=8), layer("b", "a", w2, spiking=False)])
    net.layers[0].threshold_schedule = np.array([3])
    net.validate()
    x = rng.random((5, 4)) * (rng.random((5, 4)) < 0.7)
    result = simulate(net, x)
    payloads = net.input_encoding.encode(x)
    counts = energy.count_operations(net, result.spikes, payloads)
    synops = np.zeros(4, int)
    active = np.zeros(4, int)
    for b in range(5):
        for t in range(4):
            for i in range(6):
                hits = sum(1 for j in range(4) if payloads[b, j] != 0 and w1[i, j] != 0)
                synops[t] += hits
                active[t] += bool(hits or result.spikes["a"][b, t, i])
    assert counts.layers[0].synops.tolist() == synops.tolist()
    assert counts.layers[0].active_updates.tolist() == active.tolist()
    assert counts.layers[0].spikes.tolist() == result.spikes["a"].sum(axis=(0, 2)).tolist()


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["constants"].pop("synaptic_op"), "constants.synaptic_op", "missing"),
    (lambda d: d["constants"]["synaptic_op"].update(value=-1), "constants.synaptic_op.value", "non-negative number"),
    (lambda d: d["constants"]["synaptic_op"].update(value="23.6"), "constants.synaptic_op.value", "non-negative number"),
    (lambda d: d["constants"]["synaptic_op"].update(value=True), "constants.synaptic_op.value", "non-negative number"),
    (lambda d: d["constants"]["synaptic_op"].pop("value"), "constants.synaptic_op.value", "missing"),
    (lambda d: d["constants"]["synaptic_op"].update(unit="nJ"), "constants.synaptic_op.unit", "pJ"),
    (lambda d: d["constants"]["synaptic_op"].update(status="measured?"), "constants.synaptic_op.status", "one of"),
    (lambda d: d["constants"]["synaptic_op"].update(source=""), "constants.synaptic_op.source", "non-empty"),
    (lambda d: d["constants"].update(spike_within_tile=3), "constants.spike_within_tile", "object"),
    (lambda d: d.update(kind="quantum"), "kind", "unknown kind"),
    (lambda d: d.pop("name"), "name", "missing"),
    (lambda d: d.pop("constants"), "constants", "missing"),
])
def test_malformed_profile_refused(tmp_path, mutate, field, words):
    data = neuromorphic()
    mutate(data)
    path = write_profile(tmp_path, data)
    with pytest.raises(UserError) as info:
        energy.load_profile(path)
    message = str(info.value)
    assert message.startswith(f"{path}: field '{field}'") and words in message, message


def test_unreadable_profiles_refused(tmp_path):
    with pytest.raises(UserError, match="no such profile file"):
        energy.load_profile(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match=r"bad\.json: not valid JSON \(line 1"):
        energy.load_profile(bad)
    with pytest.raises(UserError, match="must be a JSON object"):
        energy.load_profile(write_profile(tmp_path, [1, 2]))


def test_builtin_profiles_load_and_cite():
    for name in energy.BUILTIN_PROFILES:
        profile = energy.load_profile(name)
        assert profile.name == name
        assert all(c.source and c.status in energy.STATUSES for c in profile.constants.values())
    loihi1 = energy.load_profile("loihi1")
    assert (loihi1.energy("synaptic_op"), loihi1.energy("neuron_update_active"), loihi1.energy("neuron_update_inactive"),
            loihi1.energy("spike_within_tile")) == (23.6, 81, 52, 1.7)
    assert all("Table 2" in c.source for c in loihi1.constants.values())


def test_a_built_in_profile_is_named_by_its_place_in_the_package():
    """Reports travel between machines: no install path in them."""
    from dsatgo_deploy.hardware_sim.energy import load_profile

    assert load_profile("loihi1").origin == "dsatgo_deploy/profiles/loihi1.json"
