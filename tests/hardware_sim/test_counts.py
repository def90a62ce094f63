"""Operation counts of hardware_sim.counts against hand calculations and a brute-force count."""

import numpy as np

from dsatgo_deploy.hardware_sim.counts import count_operations
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.network import DeployableNetwork, InputEncoding, Layer


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
    return count_operations(tiny_net(), {"hidden": HIDDEN_SPIKES}, payloads)


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
    counts = count_operations(net, result.spikes, payloads)
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


def test_counts_of_an_sdnn_network_count_non_zero_messages(lava_dl_files):
    """lava-dl's square PilotNet SDNN: events are non-zero graded messages; the identity (delta) input layer has no
    synapse (no synops, no connections) and its neurons receive the input one to one; layers reading graded
    messages are priced as graded input."""
    import torch

    from dsatgo_deploy.importers.netx import read_netx

    net = read_netx(lava_dl_files / "gts/pilotnet_sdnn/square_network.net", timesteps=3)
    frame = np.load(lava_dl_files / "gts/pilotnet_sdnn/input.npy")[:33, :, :, 0].transpose(2, 1, 0)
    run = simulate(net, frame[None], payloads=True)
    counts = count_operations(net, run.spikes, input_payloads=frame[None])
    by_name = {lc.name: lc for lc in counts.layers}
    identity = by_name["input0"]
    assert identity.synops.sum() == 0 and identity.connections == 0 and identity.graded_input
    received = frame.reshape(1, -1) != 0  # one event per non-zero input payload, every step (static sample)
    assert np.array_equal(identity.active_updates, (received | (run.messages["input0"][0] != 0)).sum(axis=1))
    assert identity.spikes.sum() == np.count_nonzero(run.messages["input0"])
    conv1 = by_name["conv1"]
    assert conv1.graded_input and conv1.spikes.sum() == np.count_nonzero(run.messages["conv1"])
    # conv1's synops: each non-zero message of the input layer reaches its non-zero taps
    mask = (net.layer("conv1").weight != 0).astype(np.float64)
    nonzero = (run.messages["input0"][0] != 0).astype(np.float64).reshape(3, 3, 33, 33)
    expected = torch.nn.functional.conv2d(torch.from_numpy(nonzero), torch.from_numpy(mask), stride=2).sum()
    assert conv1.synops.sum() == int(expected) > 0
