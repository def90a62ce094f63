"""One row per malformed or hostile input file, each run through the real CLI entry point.

Every row must: exit 2 with one line on stderr naming the file (no traceback), write nothing (no output
folder, no partial file), leave every existing file byte-identical, and run nothing from a payload.
The size bombs also run in a fresh process that must refuse within 2 s and under 1 GB of peak memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from dsatgo_deploy import limits
from dsatgo_deploy.cli import main
from dsatgo_deploy.network import save

from . import hostile_files as H

SAVED_SPIKES = b"existing spikes file: must stay byte-identical"


def _ckpt(edit, conv: bool = False, raw: bool = False):
    """A row's builder: a checkpoint edited by ``edit(payload)``, exported to out/."""
    def build(folder: Path) -> list[str]:
        payload = H.checkpoint_payload(conv)
        edit(payload)
        path = folder / "model.pt"
        (H.write_raw_checkpoint if raw else H.write_checkpoint)(path, payload)
        return ["export", str(path), "--out", str(folder / "out")]
    return build


def _state(key: str, value):
    return lambda p: p["state_dict"].__setitem__(key, value(p["state_dict"][key]) if callable(value) else value)


def _neuron(field: str, value):
    return lambda p: p["arch"]["neuron"].__setitem__(field, value)


def _sim(write) -> callable:
    """A row's builder: ``write(folder) -> path`` of a network file, run with `dsatgo sim`."""
    def build(folder: Path) -> list[str]:
        path = write(folder)
        return ["sim", str(path), "--dataset", "digits", "--save-spikes", str(folder / "spikes.npz")]
    return build


def _net(edit):
    return _sim(lambda folder: H.edited_network(folder / "network.npz", edit))


def _netx(timesteps: str = "4", **kwargs):
    def build(folder: Path) -> list[str]:
        path = H.write_netx(folder / "model.net", **kwargs)
        return ["sim", str(path), "--timesteps", timesteps, "--dataset", "digits",
                "--save-spikes", str(folder / "spikes.npz")]
    return build


def _raw(name: str, data: bytes, command: str = "sim"):
    def build(folder: Path) -> list[str]:
        path = folder / name
        path.write_bytes(data)
        if command == "export":
            return ["export", str(path), "--out", str(folder / "out")]
        return ["sim", str(path), "--dataset", "digits", "--save-spikes", str(folder / "spikes.npz")]
    return build


def _valid_net(folder: Path) -> Path:
    path = folder / "network.npz"
    save(H.make_net(), path)
    return path


def _recording(write):
    def build(folder: Path) -> list[str]:
        recording = write(folder)
        return ["parity", "--sides", "recorded,reference", "--network", str(_valid_net(folder)), "--recorded",
                str(recording), "--dataset", "digits", "--samples", "5"]
    return build


def _data(dataset: str, input_size: int, write):
    """`dsatgo sim` of a valid network on data set ``dataset`` read from the files ``write(root)`` makes."""
    def build(folder: Path) -> list[str]:
        root = folder / "data"
        root.mkdir()
        write(root)
        path = folder / "network.npz"
        net = H.make_net(input_size)
        if dataset == "events":
            net = H.make_net(input_size, timesteps=2)
        save(net, path)
        return ["sim", str(path), "--dataset", dataset, "--data-root", str(root),
                "--save-spikes", str(folder / "spikes.npz")]
    return build


def _mnist(images: callable):
    def write(root: Path) -> None:
        images(root / "train-images-idx3-ubyte")
        H.write_idx(root / "train-labels-idx1-ubyte", (2,))
        H.write_idx(root / "t10k-images-idx3-ubyte", (2, 28, 28))
        H.write_idx(root / "t10k-labels-idx1-ubyte", (2,))
    return write


def _gzip_bomb(path: Path) -> None:
    import gzip

    with gzip.open(path.with_name(path.name + ".gz"), "wb", compresslevel=9) as handle:
        header = bytes([0, 0, 8, 3]) + (200_000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
        handle.write(header)
        for _ in range(128):
            handle.write(bytes(1 << 20))


def _cifar(batch: bytes):
    def write(root: Path) -> None:
        folder = root / "cifar-10-batches-py"
        folder.mkdir()
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            (folder / name).write_bytes(batch)
    return write


def _events(frames: bytes | np.ndarray):
    def write(root: Path) -> None:
        for split in ("train", "test"):
            if isinstance(frames, bytes):
                (root / f"{split}_frames.npy").write_bytes(frames)
            else:
                np.save(root / f"{split}_frames.npy", frames, allow_pickle=True)
            np.save(root / f"{split}_labels.npy", np.zeros(2, dtype=np.int64))
    return write


def _trap_pickle(folder_marker: str) -> bytes:
    import pickle

    return pickle.dumps({"data": H.Trap(folder_marker), "labels": [0]}, protocol=2)


def _nested_header(folder: Path) -> Path:
    _, arrays = H.network_arrays(H.make_net())
    return H.write_network(folder / "network.npz", "[" * 100_000 + "]" * 100_000, arrays)


def _lying_network(folder: Path) -> Path:
    header, arrays = H.network_arrays(H.make_net())
    entries = {"header": _npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8))}
    entries.update({key: _npy_bytes(value) for key, value in arrays.items()})
    entries["layer0.weight"] = H.lying_npy((1_000_000, 500_000), "<i8")  # 3.6 TiB declared
    return H.npz_with_entries(folder / "network.npz", entries)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _object_array_network(folder: Path) -> Path:
    header, arrays = H.network_arrays(H.make_net())
    arrays["extra"] = np.array([H.Trap(str(folder / "UNPICKLED"))], dtype=object)
    path = folder / "network.npz"
    with open(path, "wb") as handle:
        np.savez(handle, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return path


def _conv_padding(payload: dict) -> None:
    """conv1 (4 channels, 3x3 on 8x8) padded by 50000: 4 x 100006 x 100006 outputs, which the readout reads."""
    payload["arch"]["layers"][0]["padding"] = 50_000
    payload["arch"]["layers"][-1]["in_features"] = 4 * 100_006 ** 2


def _network_conv_padding(header, arrays):
    conv = H.conv_graded_network(8)
    header_conv, arrays_conv = H.network_arrays(conv)
    header_conv["layers"][0]["conv"]["padding"] = [50_000, 50_000]
    header.clear()
    header.update(header_conv)
    arrays.clear()
    arrays.update(arrays_conv)


def _set_layer(field, value):
    return lambda header, arrays: header["layers"][0].__setitem__(field, value)


def _checkpoint_trap(folder: Path) -> list[str]:
    path = folder / "model.pt"
    torch.save({"format": "dsatgo-checkpoint", "payload": H.Trap(str(folder / "UNPICKLED"))}, path)
    return ["export", str(path), "--out", str(folder / "out")]


def _checkpoint_zip_bomb(folder: Path) -> list[str]:
    path = H.zip_bomb(folder / "model.pt", "archive/data.pkl", 128 << 20)
    return ["export", str(path), "--out", str(folder / "out")]


def _npz_zip_bomb(folder: Path) -> Path:
    return H.zip_bomb(folder / "network.npz", "header.npy", 128 << 20)


def _netx_nan(folder: Path) -> list[str]:
    weight = np.full((10, 64), 2.0)
    weight[3, 4] = np.nan
    return _netx(weight=weight)(folder)


def _netx_inf(folder: Path) -> list[str]:
    weight = np.full((10, 64), 2.0)
    weight[0, 0] = np.inf
    return _netx(weight=weight)(folder)


def _samples(write) -> callable:
    """A row's builder: ``write(folder) -> path`` of a samples file, run with `dsatgo sim --input`."""
    def build(folder: Path) -> list[str]:
        network = H.edited_network(folder / "network.npz", lambda header, arrays: None)
        return ["sim", str(network), "--input", str(write(folder)), "--save-spikes", str(folder / "spikes.npz")]
    return build


#: id -> (builder(folder) -> argv, fragment of the one-line message, is a size bomb)
ROWS = {
    # checkpoints: what the model code refuses, export refuses too
    "ckpt-threshold-mode": (_ckpt(_neuron("threshold_mode", "bogus")), "threshold_mode must be one of", False),
    "ckpt-decay-mode": (_ckpt(_neuron("decay_mode", "bogus")), "decay_mode must be one of", False),
    "ckpt-surrogate-mode": (_ckpt(_neuron("surrogate_mode", 3)), "surrogate_mode must be one of", False),
    "ckpt-neuron-unknown-field": (_ckpt(_neuron("leak", 0.5)), "unknown field(s) leak", False),
    "ckpt-v_th0-zero": (_ckpt(_neuron("v_th0", 0.0)), "'arch.neuron.v_th0' must be > 0", False),
    "ckpt-f_c-nan": (_ckpt(_neuron("f_c", float("nan"))), "'arch.neuron.f_c' must be a finite number", False),
    "ckpt-weight-shape": (_ckpt(_state("synapses.fc1.weight", torch.zeros(16, 63))),
                          "shape (16, 63), but the architecture makes (16, 64)", False),
    "ckpt-missing-tensor": (_ckpt(lambda p: p["state_dict"].pop("synapses.readout.weight")),
                            "missing synapses.readout.weight", False),
    "ckpt-extra-tensor": (_ckpt(_state("synapses.fc9.weight", torch.zeros(2))), "not part of this architecture", False),
    "ckpt-bool-weight": (_ckpt(_state("synapses.fc1.weight", lambda w: w > 0)), "must hold real floats, got torch.bool", False),
    "ckpt-complex-weight": (_ckpt(_state("synapses.fc1.weight", lambda w: w.to(torch.complex64))),
                            "got torch.complex64", False),
    "ckpt-int-weight": (_ckpt(_state("synapses.fc1.weight", lambda w: w.to(torch.int32))), "got torch.int32", False),
    "ckpt-nan-weight": (_ckpt(_state("synapses.fc1.weight", lambda w: w.index_fill(0, torch.tensor([2]), float("nan")))),
                        "layer 'fc1': field 'state_dict.synapses.fc1.weight': holds NaN", False),
    "ckpt-inf-bias": (_ckpt(_state("synapses.fc1.bias", lambda b: b + float("inf"))), "NaN or infinite", False),
    "ckpt-threshold-zero": (_ckpt(_state("neurons.fc1.running_threshold", lambda t: t * 0)),
                            "thresholds must be > 0, found 0", False),
    "ckpt-threshold-negative": (_ckpt(_state("neurons.fc1.running_threshold", lambda t: -t - 1)),
                                "thresholds must be > 0", False),
    "ckpt-decay-logit-huge": (_ckpt(_state("neurons.fc1.decay_logit", torch.tensor(-1000.0))),
                              "-1000.0 is beyond +-100", False),
    "ckpt-decay-logit-shape": (_ckpt(_state("neurons.fc1.decay_logit", torch.zeros(3))),
                               "shape (3,), but the architecture makes ()", False),
    "ckpt-meta-none": (_ckpt(lambda p: p.__setitem__("meta", None), raw=True), "field 'meta' must be a dict", False),
    "ckpt-state-list": (_ckpt(lambda p: p.__setitem__("state_dict", [1, 2]), raw=True),
                        "field 'state_dict' must be a dict", False),
    "ckpt-input-quantum": (_ckpt(lambda p: p["meta"].__setitem__("input_quantum", -1.0)),
                           "'meta.input_quantum' must be null or a positive number", False),
    "ckpt-timesteps-fraction": (_ckpt(lambda p: p["arch"].__setitem__("timesteps", 2.5)),
                                "'arch.timesteps' must be an integer", False),
    "ckpt-running-var-negative": (_ckpt(_state("norms.conv1.running_var", lambda v: v - 2), conv=True),
                                  "a variance cannot be negative", False),
    "ckpt-text-file": (_raw("model.pt", b"hello, not a checkpoint\n", "export"),
                       "torch.save writes a zip archive, and this file is not one", False),
    "ckpt-empty": (_raw("model.pt", b"", "export"), "the file is empty", False),
    "ckpt-npy": (_raw("model.pt", H.lying_npy((2,)), "export"), "a single numpy .npy array", False),
    "ckpt-pickle-payload": (_checkpoint_trap, "never unpickled", False),
    "ckpt-timesteps-1e9": (_ckpt(lambda p: p["arch"].__setitem__("timesteps", 10 ** 9)),
                           "timesteps must be in [1, 1048576]", True),
    "ckpt-conv-padding-50000": (_ckpt(_conv_padding, conv=True), "one sample's activations over T would need", True),
    "ckpt-zip-bomb": (_checkpoint_zip_bomb, "the checkpoint's contents (uncompressed) would need", True),
    # deployable networks (network.npz)
    "net-is-checkpoint": (lambda f: ["sim", str(H.write_checkpoint(f / "model.pt", H.checkpoint_payload())),
                                     "--dataset", "digits", "--save-spikes", str(f / "spikes.npz")],
                          "a training checkpoint, not a deployable network: export it first", False),
    "net-npy-named-npz": (_raw("network.npz", H.lying_npy((2,))), "a single .npy array, not an .npz archive", False),
    "net-garbage": (_raw("network.npz", b"\x00garbage" * 10), "not a readable .npz archive", False),
    "net-nested-header": (_sim(_nested_header), "nests deeper than 64 levels", False),
    "net-float-threshold": (_net(lambda h, a: a.__setitem__("layer0.threshold_schedule", np.array([0.5, 0.5, 0.5]))),
                            "field 'threshold_schedule': must hold integers, got float64", False),
    "net-fraction-field": (_net(_set_layer("weight_exp", 0.5)), "field 'weight_exp': must be an integer, got 0.5", False),
    "net-fraction-input-shape": (_net(lambda h, a: h.__setitem__("input_shape", [64.5])),
                             "field 'input_shape': must be integers", False),
    "net-object-array": (_sim(_object_array_network), "holds Python objects", False),
    "net-conv-graded-24bit": (_sim(lambda f: _saved_unchecked(f, H.conv_graded_network(24))),
                              "layer 'conv1': field 'weight': with 24-bit graded input", False),
    "net-timesteps-1e12": (_net(lambda h, a: h.__setitem__("timesteps", 10 ** 12)),
                           "timesteps must be in [1, 1048576]", True),
    "net-lying-npy-header": (_sim(_lying_network), "array 'layer0.weight': its header declares shape (1000000, 500000)",
                             True),
    "net-zip-bomb": (_sim(_npz_zip_bomb), "entries (uncompressed) would need", True),
    "net-conv-padding-50000": (_net(_network_conv_padding), "one sample's neuron state and spikes would need", True),
    # lava-dl netx files
    "netx-nan-weight": (_netx_nan, "layer 0 (dense): field 'weight': holds NaN or infinite values", False),
    "netx-inf-weight": (_netx_inf, "holds NaN or infinite values", False),
    "netx-nan-threshold": (_netx(vth=float("nan")), "field 'neuron/vThMant': is nan, not an integer", False),
    "netx-timesteps-1e12": (_netx(timesteps=str(10 ** 12)), "must be in [1, 1048576]", True),
    "netx-298GiB-dataset": (_netx(big_weight=True), "its datasets would need 298.0 GiB", True),
    # spike recordings
    "recording-lying-header": (_recording(lambda f: H.npz_with_entries(
        f / "rec.npz", {"spikes/hidden": H.lying_npy((10 ** 6, 3, 10 ** 6), "|u1")})),
        "its header declares shape (1000000, 3, 1000000)", True),
    "recording-object-array": (_recording(lambda f: _saved(f / "rec.npz", {"spikes/hidden": np.array(
        [H.Trap(str(f / "UNPICKLED"))], dtype=object)})), "holds Python objects", False),
    "recording-not-npz": (_recording(lambda f: _write(f / "rec.npz", b"plain text")), "not a readable .npz archive", False),
    # data sets
    "mnist-gzip-bomb": (_data("mnist", 784, _mnist(_gzip_bomb)), "decompressed contents", True),
    "mnist-bad-magic": (_data("mnist", 784, _mnist(lambda p: p.write_bytes(b"\x01\x02\x08\x03" + bytes(12)))),
                        "not an IDX file (bad magic number)", False),
    "mnist-lying-dims": (_data("mnist", 784, _mnist(lambda p: H.write_idx(p, (10 ** 6, 28, 28), bytes(100)))),
                         "IDX header says (1000000, 28, 28)", False),
    "cifar-claims-1e12": (_data("cifar10", 3072, _cifar(H.cifar_pickle_claiming(10 ** 12))),
                          "shape (1000000000000,) would need", True),
    "cifar-pickle-payload": (_data("cifar10", 3072, lambda root: _cifar(_trap_pickle(str(root / "UNPICKLED")))(root)),
                             "refusing to load global 'posix.mkdir'", False),
    "cifar-binary-size": (_data("cifar10", 3072, lambda root: _cifar_bin(root)), "not a multiple of the 3073-byte", False),
    "events-nan-frames": (_data("events", 128, _events(np.full((2, 2, 2, 8, 8), np.nan, np.float32))),
                          "'frames' holds NaN or infinite values", False),
    "events-lying-header": (_data("events", 128, _events(H.lying_npy((10 ** 5, 2, 2, 1000, 1000), "<f4"))),
                            "its header declares shape (100000, 2, 2, 1000, 1000)", True),
    "events-object-frames": (_data("events", 128, _events(np.array([H.Trap("/nonexistent/x")], dtype=object))),
                             "holds Python objects", False),
    # the user's own samples (--input)
    "input-nan-samples": (_samples(lambda f: _saved(f / "x.npz", {"x": np.full((2, 64), np.nan)})),
                          "samples hold NaN or infinite values", False),
    "input-object-samples": (_samples(lambda f: _saved(f / "x.npz", {"x": np.array(
        [H.Trap(str(f / "UNPICKLED"))], dtype=object)})), "holds Python objects", False),
    "input-labels-float": (_samples(lambda f: _saved(f / "x.npz", {"x": np.zeros((2, 64)), "y": np.zeros(2)})),
                           "labels 'y' must be 2 integers", False),
    "input-no-x": (_samples(lambda f: _saved(f / "x.npz", {"samples": np.zeros((2, 64))})), "has no array 'x'", False),
    "input-lying-header": (_samples(lambda f: _write(f / "x.npy", H.lying_npy((10 ** 7, 10 ** 6), "<f8"))),
                           "its header declares shape (10000000, 1000000)", True),
}


def _saved(path: Path, arrays: dict) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _saved_unchecked(folder: Path, net) -> Path:
    """network.save validates; write the file a hostile tool would, past our validation."""
    header, arrays = H.network_arrays(H.conv_graded_network(8))
    header["input_encoding"]["bits"] = net.input_encoding.bits
    header["layers"][0]["input_message_bits"] = net.input_encoding.bits
    return H.write_network(folder / "network.npz", header, arrays)


def _cifar_bin(root: Path) -> None:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(bytes(3073 * 2 + 5))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("row", list(ROWS), ids=list(ROWS))
def test_hostile_input_is_refused_with_one_line(row, tmp_path, capsys, monkeypatch):
    build, fragment, _ = ROWS[row]
    monkeypatch.setenv(limits.ENV_VAR, "64M")  # the bombs' sizes are beyond it; valid files are far below
    argv = build(tmp_path)
    (tmp_path / "spikes.npz").write_bytes(SAVED_SPIKES)  # an existing output file
    before = _snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("dsatgo: error: "), err
    assert fragment in lines[0], lines[0]
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed, no payload ran (no UNPICKLED)
    assert not (tmp_path / "out").exists()


BOMB_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time
    import sklearn.datasets
    import dsatgo_deploy.cli, dsatgo_deploy.export.exporter, dsatgo_deploy.importers.netx, dsatgo_deploy.train.data
    import dsatgo_deploy.train.models, dsatgo_deploy.hardware_sim.recording, dsatgo_deploy.pipeline.sides
    from dsatgo_deploy.limits import budget_override
    results = []
    for argv, budget in json.loads(sys.argv[1]):
        start = time.perf_counter()
        with budget_override(budget):
            code = dsatgo_deploy.cli.main(argv)
        results.append({"code": code, "seconds": time.perf_counter() - start})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"results": results, "peak_mib": peak}))
""")


def test_size_bombs_are_refused_fast_and_small(tmp_path):
    """All bombs in one fresh process (its peak memory bounds every one's), each timed on its own, with the
    machine's default budget (half the available memory, whatever it is), except the zip and gzip bombs,
    which inflate to 128 MB: those under a 64 MB budget."""
    rows = [row for row in ROWS if ROWS[row][2]]
    calls = []
    for row in rows:
        folder = tmp_path / row
        folder.mkdir()
        calls.append((ROWS[row][0](folder), 64 << 20 if "zip" in row else None))
    env = {key: value for key, value in __import__("os").environ.items() if key != limits.ENV_VAR}
    done = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, json.dumps(calls)], capture_output=True, text=True,
                          env=env, timeout=300)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    messages = done.stderr.strip().splitlines()
    assert len(messages) == len(rows), done.stderr
    for row, result, message in zip(rows, outcome["results"], messages):
        assert result["code"] == 2 and ROWS[row][1] in message, (row, message)
        assert result["seconds"] < 2.0, (row, result)
    assert outcome["peak_mib"] < 1024, outcome
    assert len(rows) >= 12


def test_memory_budget_flag_raises_the_limit(tmp_path, capsys, monkeypatch):
    """The same valid network: refused under a 1 KiB budget, read under the default one."""
    path = _valid_net(tmp_path)
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    assert main(["sim", str(path), "--dataset", "digits", "--samples", "3", "--memory-budget", "1K"]) == 2
    assert "beyond the budget of 1.0 KiB (raise it with --memory-budget" in capsys.readouterr().err
    assert main(["sim", str(path), "--dataset", "digits", "--samples", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 3
