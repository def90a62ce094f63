"""The deployable network on disk: one ``.npz`` archive (no pickles) holding a JSON header and one integer
array per layer field, written atomically and byte-reproducibly; read back with every size checked against
the memory budget and every field validated (the format itself: network.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import limits, loihi
from .errors import NetworkFormatError, UserError
from .fileio import atomic_file
from .network_checks import check_integers as _check_integers
from .network_checks import check_layer_spec as _check_layer_spec
from .network_checks import fail as _fail
from .network_checks import validate

if TYPE_CHECKING:
    from .network import DeployableNetwork

_ARRAY_FIELDS = ("weight", "bias_mant", "threshold_schedule")
#: Arrays a layer holds only when set (format version 3): stored as ``layer<i>.<field>`` when not None.
_OPTIONAL_ARRAY_FIELDS = ("delay", "weight_rec")
#: Fields added after the first files were written, left out of the header at their default so that
#: such networks' files stay what they were.
_OMITTED_DEFAULTS = {"num_weight_bits": loihi.WEIGHT_BITS, "message_bits": 0, "shape": None}
_ZIP_ENTRY_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can hold
#: deflate level 1: at paper scale (21 million weights) it writes in a second what level 6 takes 15 s
#: for, within a few percent of its size (the integers' entropy, not the level, sets the size)
_ZIP_LEVEL = 1


def _narrowest(array: np.ndarray) -> np.ndarray:
    """The integers in the narrowest of int8, int16, int32 that holds them all (load reads any integer
    dtype: files written with int32 throughout load as before)."""
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for dtype in (np.int8, np.int16):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return array.astype(dtype)
    return array.astype(np.int32)


def save(net: DeployableNetwork, path: str | os.PathLike) -> None:
    """Validate and write ``net`` to ``path`` (.npz), atomically."""
    from .network import FORMAT_NAME, FORMAT_VERSION

    validate(net, str(path))
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,  # the header below is this version's (neuron kinds named)
        "timesteps": net.timesteps,
        "input_shape": list(net.input_shape),
        "input_encoding": dataclasses.asdict(net.input_encoding),
        "provenance": net.provenance,
        "quantization": net.quantization,
        "layers": [
            {k: v for k, v in dataclasses.asdict(layer).items() if k not in _ARRAY_FIELDS + _OPTIONAL_ARRAY_FIELDS
             and not (k in _OMITTED_DEFAULTS and v == _OMITTED_DEFAULTS[k])} | {"neuron": layer.neuron_name}
            for layer in net.layers
        ],
    }
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    for index, layer in enumerate(net.layers):
        for name in _ARRAY_FIELDS + _OPTIONAL_ARRAY_FIELDS:
            if getattr(layer, name) is not None:
                arrays[f"layer{index}.{name}"] = _narrowest(getattr(layer, name))
    with atomic_file(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            # np.savez stamps each entry with the current time; a fixed one makes the file
            # byte-reproducible (the same network gives the same SHA-256)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_ENTRY_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry._compresslevel = _ZIP_LEVEL  # what ZipFile.open(ZipInfo) compresses with (3.11 has no public name)
            entry.external_attr = 0o644 << 16
            with archive.open(entry, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def load(path: str | os.PathLike) -> DeployableNetwork:
    """Read and validate a deployable network; errors name the file, layer and field. Sizes are checked
    against the memory budget (dsatgo_deploy.limits) before anything is read."""
    from .network import FORMAT_NAME, DeployableNetwork, InputEncoding, Layer

    origin = str(path)
    if not Path(path).is_file():
        raise NetworkFormatError(f"{origin}: no such file")
    from .checkpoint import is_torch_archive

    if is_torch_archive(path):
        raise NetworkFormatError(f"{origin}: a training checkpoint, not a deployable network: export it first "
                                 f"(dsatgo export {origin} --out DIR) and pass DIR")
    try:
        arrays = limits.read_npz(path, origin)
    except UserError as exc:
        raise NetworkFormatError(f"{exc} (not a deployable network file)") from None
    if "header" not in arrays:
        raise NetworkFormatError(f"{origin}: not a deployable network file (no 'header' array)")
    try:
        header = limits.load_json(origin, "the header", arrays.pop("header").tobytes())
    except UserError as exc:
        raise NetworkFormatError(f"{exc} (not a deployable network file)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise NetworkFormatError(f"{origin}: not a deployable network file (header format is {header.get('format') if isinstance(header, dict) else None!r})")
    for key in ("timesteps", "format_version"):
        _check_integers(origin, None, key, header.get(key))
    limits.check_timesteps(origin, "timesteps", header["timesteps"])
    _check_integers(origin, None, "input_shape", header.get("input_shape"))
    if isinstance(header.get("input_encoding"), dict) and "bits" in header["input_encoding"]:
        _check_integers(origin, None, "input_encoding.bits", header["input_encoding"]["bits"])
    if not isinstance(header.get("layers"), list):
        _fail(origin, None, "layers", "must be a list of layers")
    try:
        layers = []
        for index, spec in enumerate(header["layers"]):
            _check_layer_spec(origin, index, spec, arrays, _ARRAY_FIELDS)
            for name in _ARRAY_FIELDS:
                spec[name] = arrays[f"layer{index}.{name}"]
            present = tuple(name for name in _OPTIONAL_ARRAY_FIELDS if f"layer{index}.{name}" in arrays)
            for name in _OPTIONAL_ARRAY_FIELDS:
                if spec.pop(name, None) is not None:
                    _fail(origin, str(spec.get("name", f"#{index}")), name, "belongs in its own array, not the header")
            _check_layer_spec(origin, index, spec, arrays, present)
            for name in present:
                spec[name] = arrays[f"layer{index}.{name}"]
            layers.append(Layer(**spec))
        net = DeployableNetwork(
            timesteps=header["timesteps"],
            input_shape=tuple(header["input_shape"]),
            input_encoding=InputEncoding(**header["input_encoding"]),
            layers=layers,
            provenance=header.get("provenance", {}),
            quantization=header.get("quantization", {}),
            format_version=header["format_version"],
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise NetworkFormatError(f"{origin}: malformed header ({limits.reason(exc)})") from None
    validate(net, origin)
    return net
