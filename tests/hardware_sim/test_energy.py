"""Energy of hardware_sim.energy against hand calculations, on the counts of tests/hardware_sim/test_counts.py."""

import math

from dsatgo_deploy.hardware_sim.energy import estimate_energy
from dsatgo_deploy.profiles import load_profile
from tests.core.test_profiles import const, neuromorphic, write_profile
from tests.hardware_sim.test_counts import tiny_counts


def test_neuromorphic_energy_exact(tmp_path):
    est = estimate_energy(tiny_counts(), load_profile(write_profile(tmp_path, neuromorphic())))
    hidden, out = est.layers
    # hidden: 7.5 * 2 + 7 * 0.5 + 2 * 0.25 + 3.5 * 1 = 15 + 3.5 + 0.5 + 3.5 = 22.5
    # out:    3.5 * 2 + 2.5 * 0.5 + 3.5 * 0.25 + 0  = 7 + 1.25 + 0.875   = 9.125
    assert (hidden.snn_pj, out.snn_pj, est.snn_dynamic_pj, est.snn_total_pj) == (22.5, 9.125, 31.625, 31.625)
    assert {t.term: t.constants for t in hidden.snn_terms} == {
        "synops": ("synaptic_op",), "neuron_updates_active": ("neuron_update_active",),
        "neuron_updates_inactive": ("neuron_update_inactive",), "spikes": ("spike_within_tile",)}
    assert est.static_pj is None and est.ann_pj is None and "graded" in " ".join(est.assumptions)
    # a graded_synaptic_op constant prices the input layer's synops: 7.5 * 4 replaces 7.5 * 2 -> +15
    est = estimate_energy(tiny_counts(), load_profile(write_profile(
        tmp_path, neuromorphic(graded_synaptic_op=const(4.0), static_per_timestep=const(8.0)))))
    assert est.layers[0].snn_pj == 37.5 and est.static_pj == 24.0 and est.snn_total_pj == 37.5 + 9.125 + 24.0


def test_per_timestep_sums_to_total(tmp_path):
    est = estimate_energy(tiny_counts(), load_profile(write_profile(tmp_path, neuromorphic())))
    hidden = est.layers[0]
    # means per step: synops 2.5 (x 2 = 5), active [2, 3, 2], inactive [1, 0, 1], spikes [0.5, 2, 1]
    # t0: 5 + 2 * 0.5 + 1 * 0.25 + 0.5 = 6.75; t1: 5 + 3 * 0.5 + 0 + 2 = 8.5; t2: 5 + 1 + 0.25 + 1 = 7.25
    assert hidden.per_timestep_pj == [6.75, 8.5, 7.25] and sum(hidden.per_timestep_pj) == hidden.snn_pj


def test_builtin_profiles_energy():
    counts = tiny_counts()
    loihi1 = estimate_energy(counts, load_profile("loihi1"))
    # hidden 7.5*23.6 + 7*81 + 2*52 + 3.5*1.7 = 177 + 567 + 104 + 5.95 = 853.95
    # out    3.5*23.6 + 2.5*81 + 3.5*52      = 82.6 + 202.5 + 182     = 467.1
    assert math.isclose(loihi1.layers[0].snn_pj, 853.95, rel_tol=1e-12)
    assert math.isclose(loihi1.snn_total_pj, 1321.05, rel_tol=1e-12)
    cmos = estimate_energy(counts, load_profile("cmos45nm"))
    # SNN: graded hidden synops as MACs 7.5 * 4.6 = 34.5, out 3.5 * 0.9 = 3.15; ANN 12 * 4.6 = 55.2
    assert math.isclose(cmos.snn_total_pj, 37.65, rel_tol=1e-12) and math.isclose(cmos.ann_pj, 55.2, rel_tol=1e-12)
    assert cmos.constants_used() == ["ac", "mac"]
    loihi2 = load_profile("loihi2")
    assert {c.status for c in loihi2.constants.values()} == {"derived"} and "fitted" in loihi2.note.lower()
    # Loihi 1's ratios kept: one fitted factor for energies (0.923), one for times (0.579), 3 significant figures
    for key, c in loihi2.constants.items():
        factor = 0.9231 if c.unit == "pJ" else 0.5786
        assert math.isclose(c.value, load_profile("loihi1").energy(key) * factor, rel_tol=6e-3), key


def test_digital_energy_exact(tmp_path):
    data = {"name": "d", "description": "x", "kind": "digital", "constants": {"ac": const(0.5), "mac": const(2.0)}}
    est = estimate_energy(tiny_counts(), load_profile(write_profile(tmp_path, data)))
    # SNN: 7.5 * 2 (graded, MAC) + 3.5 * 0.5 = 16.75; ANN: (6 + 6) * 2 = 24
    assert (est.snn_total_pj, est.ann_pj, est.layers[1].ann_pj) == (16.75, 24.0, 12.0)
