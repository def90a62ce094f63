"""netx's delays, recurrent blocks and the 'average' block through the importer (read_netx), the reference
simulator and our Lava backend, against lava-dl's ground truth (ntidigits) and lava-dl's own netx run in Lava
(hand-made files in lava-dl's layout)."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from dsatgo_deploy import network as N
from dsatgo_deploy.errors import NetworkFormatError, UserError
from dsatgo_deploy.hardware_sim.lava_backend import run_lava
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.importers.netx import read_netx

from .test_netx_import import _dense, assert_same_spikes_as_netx, run_netx

#: lava-dl's test_axonal_delay_ntidigits records the last dense block (num_layers=5: the 'average' is not built)
#: through a RingBuffer sink; its spikes of sample step t sit at column t + 4 (3 synapses and the sink).
NTIDIGITS_RECORDED_LATE = 4
NTIDIGITS_GROUPS = 11


def _ntidigits(folder, steps=None):
    spikes = np.load(folder / "gts/ntidigits/input.npy")  # (64, T) spikes
    steps = steps or spikes.shape[1]
    net = read_netx(folder / "gts/ntidigits/ntidigits.net", timesteps=steps)
    return net, spikes[:, :steps].T[None]


def test_ntidigits_imports_delays_and_the_average(lava_dl_files):
    net, _ = _ntidigits(lava_dl_files)
    assert [layer.name for layer in net.layers] == ["dense2", "dense3", "dense4", "average5"]
    assert [layer.max_delay for layer in net.layers] == [62, 62, 0, 0]
    assert [layer.delay is not None for layer in net.layers] == [True, True, False, False]
    # one delay per output neuron (netx's "axonal" delays): each row constant
    delay = net.layers[0].delay
    assert delay.shape == (256, 64) and (delay == delay[:, :1]).all() and len(np.unique(delay)) > 10
    average = net.layers[-1]
    assert not average.spiking and average.weight.shape == (NTIDIGITS_GROUPS, 242)
    assert (average.weight.sum(axis=1) == 22).all() and (average.weight.sum(axis=0) == 1).all()


def test_ntidigits_reproduces_lava_dls_ground_truth_exactly(lava_dl_files):
    net, x = _ntidigits(lava_dl_files)
    record = simulate(net, x, payloads=True)
    ours = record.spikes["dense4"][0].T  # (242, T)
    truth = np.load(lava_dl_files / "gts/ntidigits/output.npy")
    late = NTIDIGITS_RECORDED_LATE
    assert truth.sum() == 22572 and not truth[:, :late].any() and not ours[:, -late:].any()
    assert int((ours[:, :-late] != truth[:, late:]).sum()) == 0
    assert int((ours[:, :-late - 1] != truth[:, late + 1:]).sum()) > 1000  # the alignment matters
    # The 'average' readout: v after T steps is 64 x each group's spike count; the class is the busiest group.
    counts = truth.reshape(NTIDIGITS_GROUPS, -1, truth.shape[1]).sum(axis=(1, 2)).astype(np.int64)
    np.testing.assert_array_equal(record.readout[0], counts << 6)
    assert record.predictions[0] == counts.argmax() == 6


def test_ntidigits_in_our_lava_backend_equals_the_reference(lava_dl_files):
    net, x = _ntidigits(lava_dl_files, steps=120)  # cropped: Lava takes ~0.1 s a step here
    reference = simulate(net, x, payloads=True)
    lava = run_lava(net, x, payloads=True)
    assert reference.spikes["dense4"].sum() > 500
    for name, spikes in reference.spikes.items():
        np.testing.assert_array_equal(lava.spikes[name], spikes, err_msg=name)
    np.testing.assert_array_equal(lava.readout_trace, reference.readout_trace)


def test_ntidigits_refuses_steps_its_average_cannot_count(lava_dl_files):
    with pytest.raises(UserError, match=r"layer 5 \(average\): 6000 steps of 22-neuron groups can count 132000"):
        read_netx(lava_dl_files / "gts/ntidigits/ntidigits.net", timesteps=6000)


# --------------------------------------------------------------------------- hand-made files, netx's own run


def _input(h5, size):
    entry = h5.require_group("layer").create_group("0")
    entry.create_dataset("type", data=np.array([b"input"]))
    entry.create_dataset("shape", data=np.array([size]))


def _delay_file(path, rng):
    """6 inputs -> dense 7 with one delay per input (clipped from 70 to 62) -> dense 4 with a delay per synapse."""
    with h5py.File(path, "w") as h5:
        _input(h5, 6)
        first = _dense(h5, 1, rng.integers(-60, 120, (7, 6)) * 2, neuron=dict(vThMant=900, iDecay=1024, vDecay=256))
        first.create_dataset("delay", data=np.array([0, 3, 1, 70, 2, 5], dtype=np.float32))
        second = _dense(h5, 2, rng.integers(-40, 120, (4, 7)), neuron=dict(vThMant=700, iDecay=2048, vDecay=512))
        second.create_dataset("delay", data=rng.integers(0, 4, (4, 7)).astype(np.float32))


def _recurrent_file(path, rng):
    """8 inputs -> dense_rec 10 (excitatory input weights, mixed recurrent ones: each Dense keeps its own bits)
    -> dense 3."""
    with h5py.File(path, "w") as h5:
        _input(h5, 8)
        block = _dense(h5, 1, rng.integers(0, 90, (10, 8)), neuron=dict(vThMant=500, iDecay=1024, vDecay=128),
                       kind=b"dense_rec")
        block.create_dataset("weight_rec", data=rng.integers(-70, 60, (10, 10)).astype(np.float32))
        _dense(h5, 2, rng.integers(-30, 90, (3, 10)) * 2, neuron=dict(vThMant=600, iDecay=512, vDecay=512))


@pytest.mark.parametrize("make, steps", [(_delay_file, 80), (_recurrent_file, 30)], ids=["delays", "recurrent"])
def test_hand_made_file_runs_as_lava_dls_netx_runs_it(make, steps, tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "net.h5"
    make(path, rng)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = read_netx(path, timesteps=steps)
    if make is _delay_file:
        assert any("clipped to 62" in str(w.message) for w in caught)
        assert net.layers[0].delay[:, 3].tolist() == [62] * 7 and net.layers[0].delay[2].tolist() == [0, 3, 1, 62, 2, 5]
    else:
        assert net.layers[0].weight_rec.shape == (10, 10)
    x = (rng.random((1, steps, net.input_size)) < 0.35).astype(np.int64)
    reference = simulate(net, x, payloads=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        netx_spikes = run_netx(path, x, steps)  # one sample: netx's delay buffers span samples
    assert_same_spikes_as_netx(net, netx_spikes, reference)
    assert all(0.02 < s.mean() < 0.9 for s in reference.spikes.values()), {k: s.mean() for k, s in reference.spikes.items()}
    # Our Lava graph (DelayDense, a Dense from the layer to itself), several samples each from rest.
    xs = (rng.random((3, steps, net.input_size)) < 0.35).astype(np.int64)
    xs[1] = x[0]
    ours, lava = simulate(net, xs, payloads=True), run_lava(net, xs, payloads=True)
    for name in ours.spikes:
        np.testing.assert_array_equal(lava.spikes[name], ours.spikes[name], err_msg=name)
        np.testing.assert_array_equal(ours.spikes[name][1], reference.spikes[name][0])


# --------------------------------------------------------------------------- the format


def test_delays_and_recurrence_round_trip_through_the_file(tmp_path):
    rng = np.random.default_rng(4)
    for make in (_delay_file, _recurrent_file):
        path = tmp_path / f"{make.__name__}.h5"
        make(path, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = read_netx(path, timesteps=9)
        N.save(net, tmp_path / "net.npz")
        back = N.load(tmp_path / "net.npz")
        assert back.format_version == N.FORMAT_VERSION == 3
        for a, b in zip(net.layers, back.layers):
            for field in ("delay", "weight_rec"):
                left, right = getattr(a, field), getattr(b, field)
                assert (left is None and right is None) or np.array_equal(left, right), (a.name, field)
    with np.load(tmp_path / "net.npz") as archive:  # a layer without them stores no array for them
        assert "layer0.weight_rec" in archive.files and "layer1.weight_rec" not in archive.files
        assert "layer0.delay" not in archive.files


def _small_net():
    hidden = N.Layer("hidden", ["input"], np.array([[2, -4, 6], [8, 2, -2]]), 0, np.zeros(2), 6, [40], 1024, 512)
    out = N.Layer("out", ["hidden"], np.array([[4, 6]]), 0, np.zeros(1), 6, [30], 1024, 512)
    return N.DeployableNetwork(5, (3,), N.InputEncoding.spikes(), [hidden, out])


@pytest.mark.parametrize("mutate, field, fragment", [
    (lambda net: setattr(net.layers[0], "delay", np.ones((2, 2), np.int64)), "delay", "shape (2, 2) != the weight's (2, 3)"),
    (lambda net: setattr(net.layers[0], "delay", np.full((2, 3), 64)), "delay", "value 64 outside [0, 63]"),
    (lambda net: setattr(net.layers[1], "weight_rec", np.ones((2, 2), np.int64)), "weight_rec", "shape (2, 2) != (1, 1)"),
    (lambda net: setattr(net.layers[0], "weight_rec", np.array([[3, 0], [0, -2]])), "weight_rec",
     "weight_rec[0, 0] = 3 is not a 8-bit Loihi weight for a mixed matrix"),
    (lambda net: (setattr(net, "format_version", 2), setattr(net.layers[1], "delay", np.ones((1, 2), np.int64))),
     "delay", "format_version 2 files hold none"),
], ids=["delay-shape", "delay-range", "rec-shape", "rec-bits", "old-version"])
def test_validation_names_layer_and_field(mutate, field, fragment):
    net = _small_net()
    net.validate()
    mutate(net)
    with pytest.raises(NetworkFormatError) as info:
        net.validate("net.npz")
    assert str(info.value).startswith("net.npz: layer '") and f"field '{field}': " in str(info.value)
    assert fragment in str(info.value), str(info.value)


def _small_net_arrays(tmp_path, edit_header) -> dict[str, np.ndarray]:
    """The arrays of the small net's saved file, its JSON header changed by ``edit_header(header)``."""
    import json

    N.save(_small_net(), tmp_path / "net.npz")
    with np.load(tmp_path / "net.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    header = json.loads(arrays["header"].tobytes())
    edit_header(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return arrays


def test_a_delay_in_the_header_is_refused(tmp_path):
    arrays = _small_net_arrays(tmp_path, lambda header: header["layers"][0].update(delay=[[1, 2, 3], [0, 0, 0]]))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(NetworkFormatError, match=r"bad.npz: layer 'hidden': field 'delay': belongs in its own array"):
        N.load(tmp_path / "bad.npz")


def test_ntidigits_written_by_our_netx_writer_reads_back_the_same(lava_dl_files, tmp_path):
    from dsatgo_deploy.export.netx_writer import write_netx

    net, x = _ntidigits(lava_dl_files, steps=40)
    write_netx(net, tmp_path / "again.net")
    back = read_netx(tmp_path / "again.net")
    assert back.timesteps == 40 and [layer.name for layer in back.layers] == [layer.name for layer in net.layers]
    for a, b in zip(net.layers, back.layers):
        assert (a.delay is None) == (b.delay is None) and (a.delay is None or np.array_equal(a.delay, b.delay))
        assert np.array_equal(a.weight, b.weight) and a.neuron_name == b.neuron_name
    first, again = simulate(net, x, payloads=True), simulate(back, x, payloads=True)
    np.testing.assert_array_equal(again.readout_trace, first.readout_trace)


def test_the_netx_target_refuses_what_it_cannot_write(tmp_path):
    from dsatgo_deploy.export.netx_writer import write_netx

    net = _small_net()
    net.layers[0].weight_rec = np.array([[2, -4], [0, 6]])
    with pytest.raises(UserError, match="layer 'hidden': field 'weight_rec': the netx target"):
        write_netx(net, tmp_path / "x.net")
    net.layers[0].weight_rec, net.layers[1].delay = None, np.array([[63, 0]])
    with pytest.raises(UserError, match="layer 'out': field 'delay': 63 exceeds 62"):
        write_netx(net, tmp_path / "x.net")


def test_dsatgo_sim_and_report_run_ntidigits_and_predict_a_class(lava_dl_files, tmp_path, capsys):
    import json

    from dsatgo_deploy.cli import main
    from dsatgo_deploy.hardware_sim.recording import load_recording

    steps = 150
    spikes = np.load(lava_dl_files / "gts/ntidigits/input.npy")[:, :steps].T  # (T, 64)
    frames = np.stack([spikes, spikes[::-1]]).reshape(2, steps, 64, 1, 1).astype(np.uint8)
    for split in ("train", "test"):
        np.savez(tmp_path / f"{split}.npz", frames=frames, labels=np.array([6, 0]))
    path = str(lava_dl_files / "gts/ntidigits/ntidigits.net")
    data = ["--timesteps", str(steps), "--dataset", "events", "--data-root", str(tmp_path)]
    assert main(["sim", path, *data, "--save-spikes", str(tmp_path / "run.npz"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    net = read_netx(path, timesteps=steps)
    expected = simulate(net, frames.reshape(2, steps, -1), payloads=True)
    assert result["samples"] == 2 and result["spikes_per_inference"]["dense4"] == expected.spikes["dense4"].sum() / 2
    recorded = load_recording(tmp_path / "run.npz", net)
    np.testing.assert_array_equal(recorded.predictions, expected.predictions)
    counts = expected.spikes["dense4"].sum(axis=1).reshape(2, NTIDIGITS_GROUPS, -1).sum(axis=2)
    np.testing.assert_array_equal(expected.predictions, counts.argmax(axis=1))
    assert result["accuracy"] == float((expected.predictions == [6, 0]).mean())
    assert main(["report", path, *data, "--out", str(tmp_path / "report"), "--json"]) == 0
    report = json.loads((tmp_path / "report").read_text())  # --out names the JSON report itself
    assert "average5" in json.dumps(report)


def test_a_version_2_file_still_loads(tmp_path):
    arrays = _small_net_arrays(tmp_path, lambda header: header.update(format_version=2))
    np.savez(tmp_path / "v2.npz", **arrays)
    loaded = N.load(tmp_path / "v2.npz")
    assert loaded.format_version == 2 and all(layer.delay is None and layer.weight_rec is None for layer in loaded.layers)
    arrays["layer1.delay"] = np.ones((1, 2), np.int32)  # a version 2 file cannot hold delays
    np.savez(tmp_path / "v2-delay.npz", **arrays)
    with pytest.raises(NetworkFormatError, match=r"v2-delay.npz: layer 'out': field 'delay': is set, but format_version 2"):
        N.load(tmp_path / "v2-delay.npz")
