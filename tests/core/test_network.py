"""dsatgo_deploy.network: the deployable-network format, its validation and its files."""

from __future__ import annotations

import copy
import json
import os
import re
import zipfile

import numpy as np
import pytest

from dsatgo_deploy import network as N
from dsatgo_deploy.errors import NetworkFormatError, UserError

T = 3


def make_net() -> N.DeployableNetwork:
    """input 6 (graded 8-bit) -> dense 5 spiking (threshold schedule, T = 3) -> readout 3."""
    rng = np.random.default_rng(7)
    hidden_w = rng.integers(-128, 128, (5, 6)) * 2  # mixed sign: even values in [-256, 254]
    hidden_w[0, 0], hidden_w[0, 1] = -256, 254
    readout_w = rng.integers(0, 256, (3, 5))  # excitatory: any value in [0, 255]
    readout_w[0, 0], readout_w[0, 1] = 255, 11
    hidden = N.Layer(
        name="hidden",
        sources=["input"],
        weight=hidden_w,
        weight_exp=-2,
        bias_mant=[0, 100, -4096, 4095, 7],
        bias_exp=3,
        threshold_schedule=[1000, 2000, 2**17 - 1],
        current_decay=410,
        voltage_decay=1024,
        spiking=True,
        input_message_bits=8,
        scale=12.5,
    )
    readout = N.Layer(
        name="readout",
        sources=["hidden"],
        weight=readout_w,
        weight_exp=1,
        bias_mant=np.zeros(3),
        bias_exp=0,
        threshold_schedule=[],
        current_decay=4095,
        voltage_decay=0,
        spiking=False,
        input_message_bits=0,
        scale=3.0,
    )
    return N.DeployableNetwork(
        timesteps=T,
        input_shape=(2, 3),
        input_encoding=N.InputEncoding(kind="graded", bits=8, step=1 / 255, signed=False),
        layers=[hidden, readout],
        provenance={"checkpoint": "model.pt", "sha256": "ab" * 32, "nested": {"list": [1, 2.5, "x", None, True]}},
        quantization={"weight_scale": [0.1, 0.2], "method": "per-layer"},
    )


def assert_same_network(a: N.DeployableNetwork, b: N.DeployableNetwork) -> None:
    assert a.timesteps == b.timesteps
    assert a.input_shape == b.input_shape and isinstance(b.input_shape, tuple)
    assert a.input_encoding == b.input_encoding
    assert a.provenance == b.provenance
    assert a.quantization == b.quantization
    assert a.format_version == b.format_version
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert la.neuron_name == lb.neuron == lb.neuron_name, la.name  # the file names every layer's kind
        for f in (f.name for f in N.dataclasses.fields(N.Layer) if f.name != "neuron"):
            x, y = getattr(la, f), getattr(lb, f)
            if isinstance(x, np.ndarray):
                assert y.dtype == np.int64, (la.name, f, y.dtype)
                assert x.shape == y.shape and np.array_equal(x, y), (la.name, f)
            else:
                assert type(x) is type(y) and x == y, (la.name, f, x, y)


# --------------------------------------------------------------------------- round trip


def test_valid_network_validates_and_round_trips(tmp_path):
    net = make_net()
    net.validate()
    path = tmp_path / "net.npz"
    N.save(net, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]  # no temporary left
    loaded = N.load(path)
    assert_same_network(net, loaded)
    assert loaded.input_size == 6 and loaded.output.name == "readout"
    assert loaded.layer("hidden").num_neurons == 5 and loaded.layer("hidden").fan_in == 6
    assert [loaded.layer("hidden").threshold_at(t) for t in range(T)] == [1000, 2000, 2**17 - 1]
    # Saving the loaded network again gives the same content.
    N.save(loaded, tmp_path / "again.npz")
    assert_same_network(net, N.load(tmp_path / "again.npz"))


def test_collapsed_threshold_schedule_round_trips(tmp_path):
    net = make_net()
    net.layers[0].threshold_schedule = np.array([4321])
    N.save(net, tmp_path / "net.npz")
    loaded = N.load(tmp_path / "net.npz")
    assert [loaded.layers[0].threshold_at(t) for t in range(T)] == [4321] * T


def test_file_holds_no_pickles_and_a_json_header(tmp_path):
    N.save(make_net(), tmp_path / "net.npz")
    with np.load(tmp_path / "net.npz", allow_pickle=False) as archive:
        header = json.loads(archive["header"].tobytes().decode("utf-8"))
        assert all(archive[k].dtype != object for k in archive.files)
        assert set(archive.files) == {"header"} | {f"layer{i}.{f}" for i in range(2) for f in ("weight", "bias_mant", "threshold_schedule")}
    assert header["format"] == N.FORMAT_NAME and header["format_version"] == N.FORMAT_VERSION
    assert [layer["name"] for layer in header["layers"]] == ["hidden", "readout"]


# --------------------------------------------------------------------------- validation


def _set_weight(layer_index, index, value):
    def mutate(net):
        net.layers[layer_index].weight[index] = value

    return mutate


def _set(layer_index, field, value):
    def mutate(net):
        setattr(net.layers[layer_index], field, value)
        net.layers[layer_index].__post_init__()  # the coercions a constructor applies

    return mutate


def _readout_not_last(net):
    net.layers[0].spiking = False
    net.layers[0].threshold_schedule = np.zeros(0, dtype=np.int64)


def _all_inhibitory_readout(net):
    net.layers[1].weight = -np.abs(net.layers[1].weight)
    net.layers[1].weight[2, 2] = -256  # inhibitory weights are [-255, 0]


def _excitatory_256(net):
    net.layers[1].weight[1, 1] = 256


INVALID = {
    # name: (mutation, layer, field, message fragment)
    "odd weight in a mixed matrix": (_set_weight(0, (1, 2), 11), "hidden", "weight", "weight[1, 2] = 11 is not an 8-bit Loihi weight for a mixed matrix (Lava would use 10)"),
    "odd negative weight in a mixed matrix": (_set_weight(0, (2, 3), -11), "hidden", "weight", "(Lava would use -12)"),
    "mixed weight 255": (_set_weight(0, (0, 1), 255), "hidden", "weight", "(Lava would use 254)"),
    "weight above range": (_set_weight(0, (1, 2), 300), "hidden", "weight", "(Lava would use 254)"),
    "weight below range": (_set_weight(0, (1, 2), -258), "hidden", "weight", "(Lava would use -256)"),
    "excitatory weight 256": (_excitatory_256, "readout", "weight", "(Lava would use 255)"),
    "inhibitory weight -256": (_all_inhibitory_readout, "readout", "weight", "for a inhibitory matrix (Lava would use -255)"),
    "weight_exp 8": (_set(0, "weight_exp", 8), "hidden", "weight_exp", "value 8 outside [-8, 7]"),
    "weight_exp -9": (_set(1, "weight_exp", -9), "readout", "weight_exp", "value -9 outside [-8, 7]"),
    "bias mantissa 4096": (_set(0, "bias_mant", [0, 0, 4096, 0, 0]), "hidden", "bias_mant", "value 4096 outside [-4096, 4095]"),
    "bias mantissa -4097": (_set(1, "bias_mant", [0, -4097, 0]), "readout", "bias_mant", "value -4097 outside"),
    "bias mantissa shape": (_set(0, "bias_mant", [1, 2, 3]), "hidden", "bias_mant", "shape (3,) != (5,)"),
    "bias_exp 8": (_set(0, "bias_exp", 8), "hidden", "bias_exp", "value 8 outside [0, 7]"),
    "bias_exp -1": (_set(1, "bias_exp", -1), "readout", "bias_exp", "value -1 outside [0, 7]"),
    "threshold 2**17": (_set(0, "threshold_schedule", [5, 2**17, 5]), "hidden", "threshold_schedule", "value 131072 outside [0, 131071]"),
    "threshold negative": (_set(0, "threshold_schedule", [5, -1, 5]), "hidden", "threshold_schedule", "value -1 outside"),
    "schedule of 2 for T = 3": (_set(0, "threshold_schedule", [5, 6]), "hidden", "threshold_schedule", "has 2 values; expected 1 or T = 3"),
    "schedule of 4 for T = 3": (_set(0, "threshold_schedule", [5, 6, 7, 8]), "hidden", "threshold_schedule", "has 4 values"),
    "empty schedule on a spiking layer": (_set(0, "threshold_schedule", []), "hidden", "threshold_schedule", "has 0 values"),
    "thresholds on the readout": (_set(1, "threshold_schedule", [7]), "readout", "threshold_schedule", "non-spiking"),
    "weight shape vs input": (_set(0, "weight", np.zeros((5, 7))), "hidden", "weight", "expects input (7,), but source 'input' gives (2, 3)"),
    "weight shape vs hidden": (_set(1, "weight", np.zeros((3, 6))), "readout", "weight", "expects input (6,), but source 'hidden' gives (5,)"),
    "weight not 2-D": (_set(1, "weight", np.zeros(5)), "readout", "weight", "a dense weight is (out, in)"),
    "no neuron": (_set(1, "weight", np.zeros((0, 5))), "readout", "weight", "at least one neuron"),
    "unknown source": (_set(1, "sources", ["nope"]), "readout", "sources", "reads 'nope', which is not an earlier layer"),
    "later source": (_set(0, "sources", ["readout"]), "hidden", "sources", "reads 'readout'"),
    "input summed with a layer": (_set(1, "sources", ["hidden", "input"]), "readout", "sources", "graded input cannot be summed"),
    "duplicate name": (_set(1, "name", "hidden"), "hidden", "name", "unique"),
    "layer named input": (_set(0, "name", "input"), "input", "name", "unique"),
    "last layer spiking without thresholds": (_set(1, "spiking", True), "readout", "threshold_schedule", "has 0 values"),
    "readout not last": (_readout_not_last, "hidden", "spiking", "only the last layer may be a non-spiking readout"),
    "binary input_message_bits from a graded input": (_set(0, "input_message_bits", 0), "hidden", "input_message_bits", "graded 8-bit payloads"),
    "graded input_message_bits from spikes": (_set(1, "input_message_bits", 8), "readout", "input_message_bits", "binary spikes"),
    "unknown kind": (_set(0, "kind", "pool"), "hidden", "kind", "unknown layer kind 'pool'"),
    "conv without geometry": (_set(0, "kind", "conv"), "hidden", "conv", "needs its geometry"),
    "du 4096": (_set(0, "current_decay", 4096), "hidden", "current_decay", "value 4096 outside [-1, 4095]"),
    "du -2": (_set(1, "current_decay", -2), "readout", "current_decay", "value -2 outside [-1, 4095]"),
    "dv 4097": (_set(0, "voltage_decay", 4097), "hidden", "voltage_decay", "value 4097 outside [0, 4096]"),
    "dv -1": (_set(1, "voltage_decay", -1), "readout", "voltage_decay", "value -1 outside [0, 4096]"),
    "scale 0": (_set(0, "scale", 0.0), "hidden", "scale", "positive"),
    "scale nan": (_set(1, "scale", float("nan")), "readout", "scale", "positive"),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_validation_names_layer_and_field(case, tmp_path):
    mutate, layer, field, fragment = INVALID[case]
    net = make_net()
    mutate(net)
    with pytest.raises(NetworkFormatError) as info:
        net.validate("model.npz")
    message = str(info.value)
    assert message.startswith(f"model.npz: layer '{layer}': field '{field}': "), message
    assert fragment in message, message
    assert isinstance(info.value, UserError)
    # save refuses it too, naming the path, and writes nothing
    path = tmp_path / "bad.npz"
    with pytest.raises(NetworkFormatError, match=re.escape(f"{path}: layer '{layer}': field '{field}'")):
        N.save(net, path)
    assert list(tmp_path.iterdir()) == []


def test_input_encoding_bits_must_match_first_layer():
    net = make_net()
    net.input_encoding = N.InputEncoding(bits=4)
    with pytest.raises(NetworkFormatError, match=r"layer 'hidden': field 'input_message_bits': is 8, but its sources \['input'\] send graded 4-bit payloads"):
        net.validate()


@pytest.mark.parametrize(
    "mutate, field, fragment",
    [
        (lambda net: setattr(net, "timesteps", 0), "timesteps", "must be in [1, "),
        (lambda net: setattr(net, "format_version", 4), "format_version", "version 4 is not supported"),
        (lambda net: setattr(net, "layers", []), "layers", "no layers"),
    ],
    ids=["timesteps", "format_version", "layers"],
)
def test_network_level_validation(mutate, field, fragment):
    net = make_net()
    mutate(net)
    with pytest.raises(NetworkFormatError, match=re.escape(f"network: field '{field}': ")) as info:
        net.validate()
    assert fragment in str(info.value)


def test_valid_edge_values_pass():
    net = make_net()
    hidden, readout = net.layers
    hidden.weight_exp, readout.weight_exp = -8, 7
    hidden.bias_exp, readout.bias_exp = 7, 0
    hidden.current_decay, hidden.voltage_decay = 0, 4096
    readout.current_decay, readout.voltage_decay = 4095, 0
    hidden.threshold_schedule = np.array([0, 2**17 - 1, 1])
    readout.bias_mant = np.array([-4096, 4095, 0])
    readout.weight = -np.abs(readout.weight)  # inhibitory, values in [-255, 0]
    net.validate()


# --------------------------------------------------------------------------- refused files


def _write_archive(path, header=None, drop=(), arrays=None):
    """Write an .npz like save does, with the header (a JSON value) and arrays edited."""
    net = make_net()
    good = path.with_name("good-" + path.name)
    N.save(net, good)
    with np.load(good, allow_pickle=False) as archive:
        content = {k: archive[k] for k in archive.files}
    good.unlink()
    if header is not None:
        content["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    for key in drop:
        content.pop(key)
    content.update(arrays or {})
    np.savez(path, **content)


def _header():
    net = make_net()
    path_header = {
        "format": N.FORMAT_NAME,
        "format_version": net.format_version,
        "timesteps": net.timesteps,
        "input_shape": list(net.input_shape),
        "input_encoding": N.dataclasses.asdict(net.input_encoding),
        "provenance": {},
        "quantization": {},
        "layers": [
            {k: v for k, v in N.dataclasses.asdict(layer).items() if k not in ("weight", "bias_mant", "threshold_schedule")}
            for layer in net.layers
        ],
    }
    return path_header


def _refused(path, *fragments):
    with pytest.raises(NetworkFormatError) as info:
        N.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file_is_refused(tmp_path):
    _refused(tmp_path / "absent.npz", "no such file")
    (tmp_path / "folder.npz").mkdir()
    _refused(tmp_path / "folder.npz")


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("this is not a network\n")
    _refused(path, "not a deployable network file")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _refused(path, "not a deployable network file")


def test_npy_file_is_refused(tmp_path):
    path = tmp_path / "array.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.arange(6))
    _refused(path, "not a deployable network file", ".npy")


def test_other_zip_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    _refused(path, "not a deployable network file")


@pytest.mark.parametrize("keep", [0.02, 0.3, 0.5, 0.9, -1], ids=lambda k: f"keep{k}")
def test_truncated_file_is_refused(tmp_path, keep):
    good = tmp_path / "good.npz"
    N.save(make_net(), good)
    data = good.read_bytes()
    cut = len(data) - 1 if keep == -1 else int(len(data) * keep)
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[:cut])
    _refused(path, "not a deployable network file")


def test_corrupted_member_is_refused(tmp_path):
    good = tmp_path / "good.npz"
    N.save(make_net(), good)
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:  # flip a byte inside the compressed weights
        info = archive.getinfo("layer0.weight.npy")
    local = info.header_offset  # local header: name and extra lengths at +26 and +28
    name_len = int.from_bytes(data[local + 26 : local + 28], "little")
    extra_len = int.from_bytes(data[local + 28 : local + 30], "little")
    start = local + 30 + name_len + extra_len
    data[start + info.compress_size // 2] ^= 0xFF
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(data))
    _refused(path, "not a deployable network file")


def test_npz_without_header_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weight=np.zeros((2, 2), dtype=np.int32))
    _refused(path, "not a deployable network file", "header")


def test_wrong_header_format_is_refused(tmp_path):
    header = _header()
    header["format"] = "something-else"
    path = tmp_path / "other.npz"
    _write_archive(path, header=header)
    _refused(path, "header format is 'something-else'")
    path2 = tmp_path / "list.npz"
    _write_archive(path2, header=[1, 2, 3])
    _refused(path2, "not a deployable network file")
    path3 = tmp_path / "garbage.npz"
    _write_archive(path3, arrays={"header": np.array([0xFF, 0xFE, 0x00], dtype=np.uint8)})
    _refused(path3, "not a deployable network file")


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda h: h.pop("timesteps"), "field 'timesteps': must be an integer, got None"),
        (lambda h: h["layers"][0].pop("weight_exp"), "malformed header"),
        (lambda h: h["layers"][0].update(unknown_field=1), "malformed header"),
        (lambda h: h["layers"].__setitem__(0, "hidden"), "each layer is a JSON object, got str"),
        (lambda h: h.update(layers=[None, None]), "each layer is a JSON object, got NoneType"),
        (lambda h: h.update(input_encoding={"kind": "rate"}), "malformed header"),
        (lambda h: h.update(input_encoding={"bits": "8"}), "field 'input_encoding.bits': must be an integer, got '8'"),
        (lambda h: h["layers"][0].update(current_decay="fast"), "field 'current_decay': must be an integer, got 'fast'"),
    ],
    ids=["no-timesteps", "no-weight_exp", "unknown-field", "layer-not-dict", "layers-none", "encoding-kind", "encoding-bits-str", "decay-str"],
)
def test_malformed_header_is_refused(tmp_path, edit, fragment):
    header = _header()
    edit(header)
    path = tmp_path / "malformed.npz"
    _write_archive(path, header=header)
    _refused(path, fragment)


def test_missing_layer_array_is_refused_naming_layer_and_field(tmp_path):
    path = tmp_path / "missing.npz"
    _write_archive(path, drop=["layer1.bias_mant"])
    _refused(path, "layer 'readout': field 'bias_mant': missing from the file")
    # a layer whose spec is not a dict, with its arrays missing
    header = _header()
    header["layers"][1] = "readout"
    path2 = tmp_path / "missing2.npz"
    _write_archive(path2, header=header, drop=["layer1.weight", "layer1.bias_mant", "layer1.threshold_schedule"])
    _refused(path2, "layer '#1': field 'layers': each layer is a JSON object")


def test_invalid_content_in_a_file_names_file_layer_and_field(tmp_path):
    header = _header()
    header["layers"][0]["current_decay"] = 5000
    path = tmp_path / "invalid.npz"
    _write_archive(path, header=header)
    _refused(path, "layer 'hidden': field 'current_decay': value 5000 outside [-1, 4095]")
    path2 = tmp_path / "odd.npz"
    weight = make_net().layers[0].weight.astype(np.int32)
    weight[3, 3] = 13
    _write_archive(path2, arrays={"layer0.weight": weight})
    _refused(path2, "layer 'hidden': field 'weight': weight[3, 3] = 13", "(Lava would use 12)")


class _Trap:
    """Unpickling this creates a folder: proof that something was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_load_never_unpickles(tmp_path):
    marker = tmp_path / "UNPICKLED"
    trap = np.array([_Trap(str(marker))], dtype=object)
    # an object array beside a valid network
    path = tmp_path / "pickle_extra.npz"
    _write_archive(path, arrays={"extra_payload": trap})
    message = _refused(path, "not a deployable network file", "holds Python objects")
    assert "pickle" in message.lower()
    # an object array as a layer field
    path2 = tmp_path / "pickle_weight.npz"
    _write_archive(path2, arrays={"layer0.weight": trap})
    _refused(path2, "not a deployable network file")
    # the header itself pickled
    path3 = tmp_path / "pickle_header.npz"
    _write_archive(path3, arrays={"header": trap})
    _refused(path3, "not a deployable network file")
    # a bare pickled .npy
    path4 = tmp_path / "pickle.npz"
    with open(path4, "wb") as handle:
        np.save(handle, trap, allow_pickle=True)
    _refused(path4, "not a deployable network file")
    assert not marker.exists()


# --------------------------------------------------------------------------- atomic save


def test_save_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    path = out / "net.npz"

    def explode(handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half an archive")
        raise RuntimeError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        N.save(make_net(), path)
    assert list(out.iterdir()) == []  # neither the file nor a temporary

    # An existing file is kept intact when a later save fails.
    monkeypatch.undo()
    N.save(make_net(), path)
    before = path.read_bytes()
    monkeypatch.setattr(np.lib.format, "write_array", explode)
    changed = make_net()
    changed.timesteps = 5
    changed.layers[0].threshold_schedule = np.array([1])
    with pytest.raises(RuntimeError):
        N.save(changed, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["net.npz"]
    monkeypatch.undo()
    assert N.load(path).timesteps == T


def test_save_keeps_no_temporary_on_interrupt(tmp_path, monkeypatch):
    def interrupt(handle, *args, **kwargs):
        handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", interrupt)
    with pytest.raises(KeyboardInterrupt):
        N.save(make_net(), tmp_path / "net.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_creates_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "net.npz"
    N.save(make_net(), path)
    assert_same_network(make_net(), N.load(path))


# --------------------------------------------------------------------------- input encoding


def test_encode_unsigned_rounds_and_clips():
    enc = N.InputEncoding(bits=8, step=1 / 255)
    assert enc.payload_range == (0, 255)
    x = np.array([0.0, 1.0, 0.4 / 255, 1.49 / 255, 1.51 / 255, 100.4 / 255, 1.5, -0.3, 1 + 1e-9])
    got = enc.encode(x)
    assert got.dtype == np.int64
    assert got.tolist() == [0, 255, 0, 1, 2, 100, 255, 0, 255]
    # exact halves round to even (np.rint)
    half = N.InputEncoding(bits=4, step=0.5)
    assert half.payload_range == (0, 15)
    assert half.encode([0.25, 0.75, 1.25, 1.75, 7.25, 7.75, 100.0]).tolist() == [0, 2, 2, 4, 14, 15, 15]


def test_encode_signed_rounds_and_clips():
    enc = N.InputEncoding(bits=4, step=1.0, signed=True)
    assert enc.payload_range == (-8, 7)
    got = enc.encode(np.array([[-9.0, -8.4, -7.6], [7.6, 100.0, 3.5], [-2.5, 0.49, -0.51]]))
    assert got.shape == (3, 3) and got.dtype == np.int64
    assert got.tolist() == [[-8, -8, -8], [7, 7, 4], [-2, 0, -1]]
    wide = N.InputEncoding(bits=24, step=0.25, signed=True)
    assert wide.payload_range == (-(2**23), 2**23 - 1)
    assert wide.encode([1e9, -1e9, 0.125, 0.375]).tolist() == [2**23 - 1, -(2**23), 0, 2]


def test_encode_equals_the_float64_numpy_statement_for_any_array_layout():
    """encode runs in torch (both cores); it must be numpy's float64 (x - mean) / std / step, rint, clip,
    for reversed, strided, read-only, float32 and integer inputs alike, and leave x untouched."""
    rng = np.random.default_rng(3)
    enc = N.InputEncoding(bits=8, step=0.0123, signed=True, mean=[0.1, -0.2, 0.3], std=[0.5, 0.25, 2.0])

    def numpy_statement(x):
        scaled = (np.asarray(x, dtype=np.float64) - np.reshape(enc.mean, (1, -1, 1))) / np.reshape(enc.std, (1, -1, 1))
        return np.clip(np.rint(scaled / enc.step), -128, 127).astype(np.int64)

    base = rng.normal(0, 1, (6, 3, 40))
    base[0, 0, :4] = np.array([0.5, 1.5, 2.5, -0.5]) * enc.step * enc.std[0] + enc.mean[0]  # ties, to even
    read_only = base.copy()
    read_only.flags.writeable = False
    for x in (base, base[::-1], base[:, :, ::3], read_only, base.astype(np.float32), (base * 10).astype(np.int16)):
        before = np.array(x, copy=True)
        assert np.array_equal(enc.encode(x), numpy_statement(x))
        assert np.array_equal(x, before)


@pytest.mark.parametrize(
    "kwargs",
    [dict(kind="rate"), dict(bits=0), dict(bits=25), dict(step=0.0), dict(step=-1.0), dict(step=float("nan")), dict(step=float("inf"))],
    ids=["kind", "bits0", "bits25", "step0", "step-neg", "step-nan", "step-inf"],
)
def test_input_encoding_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        N.InputEncoding(**kwargs)


def test_dense_layer_coerces_types():
    layer = make_net().layers[0]
    copied = copy.deepcopy(layer)
    copied.weight_exp = np.int32(-2)
    copied.spiking = np.bool_(True)
    copied.__post_init__()
    assert type(copied.weight_exp) is int and type(copied.spiking) is bool
    assert copied.bias_mant.dtype == np.int64 and copied.threshold_schedule.dtype == np.int64


# --------------------------------------------------------------------------- netx-import extensions


def make_import_net() -> N.DeployableNetwork:
    """spikes (2, 4, 3) -> conv 2 ch, per-neuron bias, du = -1 -> dense 3, 6 weight bits -> dense 2 spiking."""
    rng = np.random.default_rng(11)
    conv = N.ConvGeometry((2, 4, 3), padding=(1, 1))
    layers = [
        N.Layer("c", ["input"], 2 * rng.integers(-100, 100, (2, 2, 3, 3)), 0, rng.integers(-50, 50, 24), 6, [100], -1,
                100, kind="conv", conv=conv),
        N.Layer("d", ["c"], 8 * rng.integers(-32, 32, (3, 24)), -3, [1, 2, 3], 6, [300], 0, 0, num_weight_bits=6),
        N.Layer("out", ["d"], 2 * rng.integers(0, 100, (2, 3)), 0, [0, 0], 6, [50, 60, 70], 4095, 4096),
    ]
    return N.DeployableNetwork(T, (2, 4, 3), N.InputEncoding.spikes(), layers, provenance={"imported_from": "test"})


def test_import_extensions_validate_and_round_trip(tmp_path):
    net = make_import_net()
    net.validate()
    assert not net.has_readout and net.layers[0].bias_per_neuron.shape == (24,)
    N.save(net, tmp_path / "net.npz")
    loaded = N.load(tmp_path / "net.npz")
    assert_same_network(net, loaded)
    with np.load(tmp_path / "net.npz") as archive:
        header = json.loads(archive["header"].tobytes().decode("utf-8"))
    # num_weight_bits is written only where it is not 8, so 8-bit networks' files are as before.
    assert [layer.get("num_weight_bits") for layer in header["layers"]] == [None, 6, None]
    assert header["input_encoding"]["kind"] == "spikes" and header["input_encoding"]["bits"] == 0
    # An 8-bit network's header holds no num_weight_bits at all (the files older readers wrote).
    N.save(make_net(), tmp_path / "old.npz")
    with np.load(tmp_path / "old.npz") as archive:
        assert "num_weight_bits" not in archive["header"].tobytes().decode("utf-8")
    assert N.load(tmp_path / "old.npz").layers[0].num_weight_bits == 8


def test_spike_input_encoding():
    encoding = N.InputEncoding.spikes()
    assert encoding.payload_range == (0, 1)
    assert encoding.encode(np.array([[0.0, 0.2, -1.0, 3.0]])).tolist() == [[0, 1, 1, 1]]
    with pytest.raises(ValueError, match=r"spike input has bits 0 \(binary spikes\), got 8"):
        N.InputEncoding(kind="spikes")
    with pytest.raises(ValueError, match="mean and std must be None"):
        N.InputEncoding(kind="spikes", bits=0, mean=[0.5], std=[1.0])
    with pytest.raises(ValueError, match="kind must be one of"):
        N.InputEncoding(kind="events")


IMPORT_INVALID = {
    "num_weight_bits 10": (_set(1, "num_weight_bits", 10), "d", "num_weight_bits", "value 10 outside [1, 9]"),
    "num_weight_bits 0": (_set(1, "num_weight_bits", 0), "d", "num_weight_bits", "value 0 outside [1, 9]"),
    "weight not on 6 bits": (_set_weight(1, (0, 0), 6), "d", "weight", "is not a 6-bit Loihi weight for a mixed matrix "
                                                                        "(Lava would use 0)"),
    "conv bias per row": (_set(0, "bias_mant", np.zeros(12)), "c", "bias_mant", "neither (2,) (one bias per output "
                                                                               "channel) nor (24,)"),
    "graded bits from spike input": (_set(0, "input_message_bits", 8), "c", "input_message_bits", "binary spikes"),
    "input summed with a layer": (_set(2, "sources", ["d", "input"]), "out", "sources",
                                  "the input cannot be summed with other sources"),
    "spiking readout without thresholds": (_set(2, "threshold_schedule", []), "out", "threshold_schedule", "has 0 values"),
}


@pytest.mark.parametrize("case", list(IMPORT_INVALID), ids=list(IMPORT_INVALID))
def test_import_extensions_are_validated(case):
    mutate, layer, field, fragment = IMPORT_INVALID[case]
    net = make_import_net()
    mutate(net)
    with pytest.raises(NetworkFormatError) as info:
        net.validate("net.npz")
    assert str(info.value).startswith(f"net.npz: layer '{layer}': field '{field}': "), str(info.value)
    assert fragment in str(info.value)


def test_a_weight_exactly_6_bits_wide_validates():
    net = make_import_net()
    net.layers[1].weight[0, 0] = 4  # mixed sign, 6 bits: Lava drops the 3 lowest bits
    with pytest.raises(NetworkFormatError, match="Lava would use 0"):
        net.validate()
    net.layers[1].weight[0, 0] = 16
    net.validate()


def _graded_conv(total: int, bits: int) -> N.DeployableNetwork:
    """One conv layer (16 channels, 3x3) on 16-bit payloads whose weights sum to ``total`` (<= 144 * 255)."""
    weight = np.full(144, total // 144)
    weight[: total % 144] += 1
    layer = N.Layer(name="conv1", sources=["input"], weight=weight.reshape(1, 16, 3, 3), weight_exp=0,
                    bias_mant=np.zeros(1), bias_exp=0, threshold_schedule=[100], current_decay=0, voltage_decay=0,
                    input_message_bits=bits, kind="conv", conv=N.ConvGeometry((16, 3, 3)))
    return N.DeployableNetwork(timesteps=1, input_shape=(16, 3, 3),
                               input_encoding=N.InputEncoding(kind="graded", bits=bits, step=1.0), layers=[layer])


def test_conv_with_graded_input_is_refused_once_a_sum_can_reach_2_31():
    """16-bit payloads (at most 65535): weights summing to 32768 keep every sum <= 2147450880 < 2**31;
    32769 allows 2147516415 >= 2**31, which Lava's float64 -> int32 cast cannot hold."""
    _graded_conv(32768, 16).validate()
    with pytest.raises(NetworkFormatError, match=re.escape(
            "layer 'conv1': field 'weight': with 16-bit graded input a neuron's synaptic sum can reach 2147516415")):
        _graded_conv(32769, 16).validate()
    _graded_conv(32769, 15).validate()  # 15 bits: 32767 * 32769 < 2**31


def test_lavas_conv_differs_from_exact_sums_beyond_2_31_and_agrees_below():
    """The reason for the refusal, shown on Lava's own Conv arithmetic (lava.proc.conv.utils.conv)."""
    from dsatgo_deploy import lava_compat

    lava_compat.install()
    from lava.proc.conv import utils

    import torch

    from dsatgo_deploy import loihi

    for total, agrees in ((32768, True), (32769, False)):
        net = _graded_conv(total, 16)
        weight = net.layers[0].weight
        x = np.full((1, 16, 3, 3), 65535)
        exact = int((weight * x).sum())
        lava_weight = weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1).astype(np.int32)  # netx's (out, kx, ky, in)
        lava = int(utils.conv(x[0].transpose(2, 1, 0).astype(np.int32), lava_weight, (3, 3), (1, 1), (0, 0),
                              (1, 1), 1)[0, 0, 0])
        ours = int(loihi.conv_accumulate(torch.from_numpy(weight.astype(np.float64)), torch.from_numpy(x),
                                         (1, 1), (0, 0), (1, 1), graded=True)[0, 0, 0, 0])
        assert (lava == exact) is agrees, (total, lava, exact)
        assert ours == int(loihi.wrap_signed(torch.tensor(exact), loihi.STATE_BITS))


def _pilotnet_sdnn(lava_dl_files):
    from dsatgo_deploy.importers.netx import read_netx

    return read_netx(lava_dl_files / "gts/pilotnet_sdnn/square_network.net", timesteps=4)


def test_sdnn_network_round_trips_as_format_3(lava_dl_files, tmp_path):
    """An imported SDNN network (identity delta input, graded sigma-delta layers) is written as version 3 and read back
    field for field; a file's format_version 1 and 2 networks still load (test_plugins)."""
    net = _pilotnet_sdnn(lava_dl_files)
    N.save(net, tmp_path / "sdnn.npz")
    back = N.load(tmp_path / "sdnn.npz")
    assert back.format_version == N.FORMAT_VERSION == 3 and N.READABLE_VERSIONS == (1, 2, 3)
    for a, b in zip(net.layers, back.layers):
        assert (a.kind, a.neuron, a.message_bits, a.shape, a.input_message_bits) == (
            b.kind, b.neuron, b.message_bits, b.shape, b.input_message_bits)
        assert np.array_equal(a.bias_mant, b.bias_mant) and np.array_equal(a.weight, b.weight)
    assert back.layers[0].kind == "identity" and back.layers[0].shape == (3, 33, 33)
    assert back.depths()["input0"] == 0 and back.depths()["conv1"] == 1


@pytest.mark.parametrize(
    "mutate, layer, field, fragment",
    [
        (lambda net: setattr(net.layers[1], "input_message_bits", 0), "conv1", "input_message_bits",
         "send graded 16-bit payloads"),
        (lambda net: setattr(net.layers[0], "shape", (3, 33, 32)), "input0", "shape", "its source 'input' gives"),
        (lambda net: setattr(net.layers[0], "message_bits", 0), "input0", "message_bits", "outside [1, 24]"),
        (lambda net: setattr(net.layers[1], "neuron", "delta"), "conv1", "neuron", "its layer kind is 'identity'"),
        (lambda net: setattr(net.layers[1], "voltage_decay", 5), "conv1", "voltage_decay", "outside [0, 0]"),
        (lambda net: setattr(net.layers[0], "weight", np.ones(3, np.int64)), "input0", "weight", "no synapse"),
    ],
    ids=["consumer-bits", "identity-shape", "message-bits", "delta-on-conv", "sdnn-decay", "identity-weight"],
)
def test_sdnn_validation_names_layer_and_field(lava_dl_files, mutate, layer, field, fragment):
    net = _pilotnet_sdnn(lava_dl_files)
    mutate(net)
    with pytest.raises(NetworkFormatError, match=re.escape(f"net.npz: layer '{layer}': field '{field}': ")) as info:
        net.validate("net.npz")
    assert fragment in str(info.value)


def test_bias_input_encodes_13_bit_mantissas_and_needs_an_identity_lif(lava_dl_files):
    """Bias input (tiny.net's LIF input neuron): payloads are clipped to the 13-bit signed bias mantissa; only an
    identity layer of LIF neurons with no bias of its own may read it, and only static samples drive it."""
    from dsatgo_deploy.hardware_sim.reference import simulate
    from dsatgo_deploy.importers.netx import read_netx

    encoding = N.InputEncoding.bias()
    assert (encoding.bits, encoding.signed, encoding.messages) == (13, True, 0)
    assert encoding.encode(np.array([[5000.0, -5000.0, 12.4]])).tolist() == [[4095, -4096, 12]]
    with pytest.raises(ValueError, match="13-bit signed"):
        N.InputEncoding(kind="bias", bits=8, step=1.0, signed=True)
    net = read_netx(lava_dl_files / "tiny.net", timesteps=2)
    net.layers[0].bias_mant = np.ones_like(net.layers[0].bias_mant)
    with pytest.raises(NetworkFormatError, match=r"layer 'input0': field 'bias_mant': bias input sets"):
        net.validate("net.npz")
    net = read_netx(lava_dl_files / "tiny.net", timesteps=2)
    net.layers = net.layers[1:]
    net.layers[0].sources = [N.INPUT]
    with pytest.raises(NetworkFormatError, match=r"layer 'conv1': field 'kind': bias input sets the bias of an identity"):
        net.validate("net.npz")
    net = read_netx(lava_dl_files / "tiny.net", timesteps=2)
    with pytest.raises(UserError, match="samples must be static"):
        simulate(net, np.zeros((1, 2, 3, 16, 16)), payloads=True)
