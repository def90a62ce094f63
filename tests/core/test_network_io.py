"""network.npz holds each integer array in the narrowest dtype that fits it, and files written before
that (every array int32) load to the same network."""

from __future__ import annotations

import zipfile

import numpy as np

from dsatgo_deploy import network as N
from dsatgo_deploy.network_io import _ARRAY_FIELDS

from .test_network import make_net


def _dtypes(path) -> dict[str, np.dtype]:
    with np.load(path) as archive:
        return {key: archive[key].dtype for key in archive.files}


def test_arrays_take_the_narrowest_integer_dtype_and_load_back_equal(tmp_path):
    net = make_net()
    path = tmp_path / "network.npz"
    N.save(net, path)
    dtypes = _dtypes(path)
    # hidden: mixed-sign weights reach -256 and 254 (int16), thresholds 2**17 - 1 (int32), biases +-4096 (int16)
    assert dtypes["layer0.weight"] == np.int16 and dtypes["layer0.threshold_schedule"] == np.int32
    assert dtypes["layer0.bias_mant"] == np.int16
    # readout: weights up to 255 (int16), zero biases (int8), no thresholds (int8)
    assert dtypes["layer1.weight"] == np.int16 and dtypes["layer1.bias_mant"] == np.int8
    loaded = N.load(path)
    for ours, theirs in zip(net.layers, loaded.layers):
        for field in _ARRAY_FIELDS:
            assert np.array_equal(getattr(ours, field), getattr(theirs, field))


def test_a_file_written_with_int32_arrays_loads_as_before(tmp_path):
    """Files from before the narrowing held every array as int32: rewrite one that way and load it."""
    net = make_net()
    narrow, wide = tmp_path / "narrow.npz", tmp_path / "wide.npz"
    N.save(net, narrow)
    with np.load(narrow) as archive:
        arrays = {key: archive[key] if key == "header" else archive[key].astype(np.int32) for key in archive.files}
    with zipfile.ZipFile(wide, "w", zipfile.ZIP_DEFLATED) as out:
        for key, array in arrays.items():
            with out.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    assert set(_dtypes(wide).values()) == {np.dtype(np.uint8), np.dtype(np.int32)}
    old, new = N.load(wide), N.load(narrow)
    assert [layer.name for layer in old.layers] == [layer.name for layer in new.layers]
    for a, b in zip(old.layers, new.layers):
        for field in _ARRAY_FIELDS:
            assert np.array_equal(getattr(a, field), getattr(b, field)) and getattr(a, field).dtype == np.int64
