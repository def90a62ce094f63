"""dsatgo sim on a lava-dl netx HDF5 file (recognised by its signature, whatever its name)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dsatgo_deploy.cli import main
from dsatgo_deploy.export.exporter import NETX_FILE
from dsatgo_deploy.importers.netx import read_netx
from dsatgo_deploy.hardware_sim.reference import simulate
from dsatgo_deploy.pipeline.sides import run_side


def test_sim_runs_a_netx_file(exported, digits, tmp_path, capsys):
    path = tmp_path / "model.net"  # not .h5: the file is recognised as HDF5
    shutil.copy(exported.out_dir / NETX_FILE, path)
    assert main(["sim", str(path), "--timesteps", "4", "--input-bits", "8", "--samples", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    net = read_netx(path, 8, timesteps=4)
    expected = simulate(net, digits.x_test[:40]).predictions
    assert result["samples"] == 40 and result["accuracy"] == float((expected == digits.y_test[:40]).mean())
    assert set(result["spikes_per_inference"]) == {"fc1"}


def _without_run_attributes(exported, tmp_path):
    """Our netx file as lava-dl's exporter would write it: no root attributes."""
    import h5py

    path = tmp_path / "plain.net"
    shutil.copy(exported.out_dir / NETX_FILE, path)
    with h5py.File(path, "r+") as h5:
        for key in list(h5.attrs):
            del h5.attrs[key]
    return path


def test_sim_of_a_lava_dl_netx_file_needs_timesteps(exported, tmp_path, capsys):
    code = main(["sim", str(_without_run_attributes(exported, tmp_path)), "--samples", "5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "a lava-dl netx file holds no timestep count: pass --timesteps T" in err
    assert len(err.strip().splitlines()) == 1


def test_our_netx_file_alone_reproduces_the_network(exported, digits, capsys):
    """Our netx file carries T and the input quantum (1/16 for digits), so `dsatgo sim` on it, with no
    --timesteps or --input-bits, gives the accuracy of network.npz."""
    results = {}
    for name in (NETX_FILE, "network.npz"):
        assert main(["sim", str(exported.out_dir / name), "--json"]) == 0
        results[name] = json.loads(capsys.readouterr().out)
    net = read_netx(exported.out_dir / NETX_FILE)
    assert net.timesteps == exported.network.timesteps == 4
    assert net.input_encoding == exported.network.input_encoding and net.input_encoding.step == 1 / 16
    assert net.provenance["source_sha256"] == exported.manifest["source_sha256"]
    assert results[NETX_FILE]["samples"] == len(digits.y_test)
    # netx holds one threshold per layer, network.npz the schedule: a point or so apart (a 1/255
    # quantum, what a reader without the attributes assumes, gave 73 %)
    assert abs(results[NETX_FILE]["accuracy"] - results["network.npz"]["accuracy"]) <= 0.02
    assert results[NETX_FILE]["accuracy"] > 0.85


def test_parity_and_report_take_a_netx_file(exported, digits, tmp_path, capsys):
    """A lava-dl user's netx file goes through parity (reference against Lava) and the report, given
    what the file does not hold: T and the input's bits."""
    path = tmp_path / "model.net"
    shutil.copy(exported.out_dir / NETX_FILE, path)
    netx_args = ["--timesteps", "4", "--input-bits", "8", "--dataset", "digits"]
    code = main(["parity", "--network", str(path), "--sides", "reference,onnx", "--samples", "12", "--json", *netx_args])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"] and report["class_agreement"] == 1.0
    code = main(["parity", "--network", str(path), "--sides", "reference,lava", "--samples", "6", "--json", *netx_args])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"] and report["samples"] == 6
    out = tmp_path / "report" / "report.json"
    assert main(["report", str(path), "--samples", "20", "--out", str(out), "--json", *netx_args]) == 0
    written = json.loads(out.read_text())
    net = read_netx(path, 8, timesteps=4)
    expected = simulate(net, digits.x_test[:20])
    assert written == json.loads(capsys.readouterr().out)
    assert written["accuracy"] == float((expected.predictions == digits.y_test[:20]).mean())
    assert (out.parent / "report.md").is_file()


def test_parity_of_a_netx_file_needs_timesteps(exported, tmp_path, capsys):
    code = main(["parity", "--network", str(_without_run_attributes(exported, tmp_path)), "--samples", "5",
                 "--dataset", "digits"])
    assert code == 2
    assert "pass --timesteps T" in capsys.readouterr().err


def test_sim_parity_and_report_take_the_users_own_samples(exported, digits, tmp_path, capsys):
    """--input: a network with no data set of ours runs on samples from a file; labels are optional."""
    path = _without_run_attributes(exported, tmp_path)
    x, y = digits.x_test[:12], digits.y_test[:12]
    import numpy as np

    np.savez(tmp_path / "samples.npz", x=x, y=y)
    np.save(tmp_path / "unlabelled.npy", x)
    net = read_netx(path, 8, timesteps=4)
    expected = simulate(net, x).predictions
    flags = ["--timesteps", "4", "--input-bits", "8"]
    assert main(["sim", str(path), *flags, "--input", str(tmp_path / "samples.npz"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 12 and result["accuracy"] == float((expected == y).mean())
    assert main(["sim", str(path), *flags, "--input", str(tmp_path / "unlabelled.npy")]) == 0
    assert "reference: no labels on 12 samples" in capsys.readouterr().out
    assert main(["parity", "--network", str(path), *flags, "--input", str(tmp_path / "unlabelled.npy"),
                 "--sides", "reference,onnx", "--json"]) == 0
    parity = json.loads(capsys.readouterr().out)
    assert parity["samples"] == 12 and parity["class_agreement"] == 1.0
    out = tmp_path / "report" / "report.json"
    assert main(["report", str(path), *flags, "--input", str(tmp_path / "samples.npz"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["accuracy"] == float((expected == y).mean())
    capsys.readouterr()
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5)))
    for bad, message in ((tmp_path / "wrong.npy", "samples of shape (5,), but the network takes (64,)"),
                         (tmp_path / "missing.npy", "no such file")):
        assert main(["sim", str(path), *flags, "--input", str(bad)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert main(["sim", str(path), *flags, "--input", str(tmp_path / "samples.npz"), "--dataset", "digits"]) == 2
    assert "drop --dataset" in capsys.readouterr().err
def _pilotnet_sdnn_frames(lava_dl_files, folder, steps):
    """lava-dl's stored PilotNet SDNN frame (input.npy, (X, Y, C)) as an events data set of one sample per split,
    the frame held for T steps (what test_pilotnet_sdnn's one-frame RingBuffer sends)."""
    import numpy as np

    frame = np.load(lava_dl_files / "gts/pilotnet_sdnn/input.npy")[..., 0].transpose(2, 1, 0)  # (C, H, W)
    frames = np.repeat(frame[None, None], steps, axis=1).astype(np.int16)
    for split in ("train", "test"):
        np.savez(folder / f"{split}.npz", frames=frames, labels=np.zeros(1, np.int64))
    return frame


def test_sim_and_parity_run_lava_dls_pilotnet_sdnn(lava_dl_files, tmp_path, capsys):
    """`dsatgo sim` and `dsatgo parity --sides reference,lava` on lava-dl's own SDNN file (delta input, sigma-delta
    layers, sigma output) with its stored frame: the reference's output is the one read_netx + simulate give, and
    Lava's equals it bit for bit."""
    import numpy as np

    steps = 3
    frame = _pilotnet_sdnn_frames(lava_dl_files, tmp_path, steps)
    path = str(lava_dl_files / "gts/pilotnet_sdnn/network.net")
    data = ["--timesteps", str(steps), "--dataset", "events", "--data-root", str(tmp_path), "--json"]
    assert main(["sim", path, *data]) == 0
    result = json.loads(capsys.readouterr().out)
    run = simulate(read_netx(path, timesteps=steps), frame[None], payloads=True)
    expected = {name: float(np.count_nonzero(values)) for name, values in run.spikes.items()}
    assert result["samples"] == 1 and result["spikes_per_inference"] == expected
    assert min(expected[name] for name in ("input0", "conv1", "conv4", "dense6", "dense7")) > 0
    assert main(["parity", "--network", path, "--sides", "reference,lava", "--samples", "1", *data]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bit_exact"] is True
    assert [layer["mismatched_entries"] for layer in report["layers"]] == [0] * 8


def test_report_runs_lava_dls_pilotnet_sdnn(lava_dl_files, tmp_path, capsys):
    """`dsatgo report` on lava-dl's SDNN file: per-layer spikes are non-zero graded messages, the identity input
    layer has no synaptic ops, and the report validates against its schema."""
    import jsonschema
    import numpy as np

    from dsatgo_deploy.hardware_sim.report import SCHEMA_FILE

    steps = 3
    frame = _pilotnet_sdnn_frames(lava_dl_files, tmp_path, steps)
    path = str(lava_dl_files / "gts/pilotnet_sdnn/network.net")
    out = tmp_path / "report" / "report.json"
    assert main(["report", path, "--timesteps", str(steps), "--dataset", "events", "--data-root", str(tmp_path),
                 "--out", str(out)]) == 0
    capsys.readouterr()
    report = json.loads(out.read_text())
    jsonschema.validate(report, json.loads(SCHEMA_FILE.read_text()))
    run = simulate(read_netx(path, timesteps=steps), frame[None], payloads=True)
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert layers["input0"]["kind"] == "identity" and layers["input0"]["per_inference"]["synops"] == 0
    for name, messages in run.messages.items():
        assert layers[name]["per_inference"]["spikes"] == float(np.count_nonzero(messages)), name
    assert layers["conv1"]["per_inference"]["synops"] > 0 and layers["conv1"]["graded_input"]


def test_bias_driven_input_with_samples_within_0_1_gets_a_note(lava_dl_files, tmp_path, capsys):
    """mnist.net's input LIF is driven by its bias: 0/1 samples give bias mantissas of at most 1, which never reach
    its threshold (v settles near 2100, the threshold is 80 << 6 = 5120): nothing fires, and one note on stderr says
    why, once per run however many sides run the network. Scaled (x 60) the same samples fire, and no note."""
    x = (np.random.default_rng(0).random((3, 1, 28, 28)) > 0.5).astype(np.float32)
    mnist, spikes, errors = str(lava_dl_files / "mnist.net"), {}, {}
    for scale in (1, 60):
        np.save(tmp_path / f"x{scale}.npy", x * scale)
        assert main(["sim", mnist, "--timesteps", "8", "--input", str(tmp_path / f"x{scale}.npy"), "--json"]) == 0
        out, errors[scale] = capsys.readouterr()
        spikes[scale] = json.loads(out)["spikes_per_inference"]["input0"]
    assert spikes[1] == 0 and spikes[60] > 100
    assert errors[60] == "" and errors[1].splitlines() == [
        "note: the input layer input0 is driven by its bias: each sample value becomes its neurons' bias mantissa, "
        "and these samples all lie within [0, 1] (threshold mantissa 80), so it will hardly fire: scale them as "
        "lava-dl does (PilotNet's image holds 1..76) or pass --input-bits to send messages"]
    net = read_netx(mnist, timesteps=8)
    for _ in range(2):  # two sides of one parity run: one note
        run_side("reference", net=net, checkpoint=None, x=x)
    assert capsys.readouterr().err.count("note: the input layer input0 is driven by its bias") == 1
    assert main(["sim", mnist, "--timesteps", "8", "--input-bits", "8", "--input", str(tmp_path / "x1.npy")]) == 0
    assert "note:" not in capsys.readouterr().err  # messages, not a bias: nothing to say
    assert main(["sim", mnist, "--timesteps", "8", "--backend", "onnx", "--input", str(tmp_path / "x1.npy")]) == 0
    assert capsys.readouterr().err.count("note: the input layer input0 is driven by its bias") == 1  # onnx too


def test_help_says_bias_driven_input_needs_scaled_samples(capsys):
    with pytest.raises(SystemExit):
        main(["sim", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("A lava-dl netx file whose input layer is a LIF (mnist.net, PilotNet) is driven by its bias without this "
            "flag: each sample value becomes its bias mantissa, and 0/1 samples reach no usual threshold (mnist.net's "
            "input never fires)") in text
    assert "takes each value as a bias mantissa: samples within [0, 1] must be scaled" in text
