"""How the ONNX graphs (export/onnx_writer.py) store their large constants: in as few bytes as the values need,
rebuilt inside the graph by ops that onnxruntime folds once when it loads the model (so a step runs as before).

* Integers (the integer graph's weight mantissas and per-neuron biases) are stored in the narrowest of int8,
  int16, int32, int64 that holds them after dividing out their common power of two 2**s (Loihi's 8-bit
  weights of a mixed-sign matrix are even: -254..254 is int8 times 2), then ``Cast`` to the compute dtype
  and, when s > 0, multiplied by 2**s (a one-element initializer). Every step is exact: the values are
  integers below 2**24 in float32, below 2**53 in float64, any in int64.
* An array whose rows come in blocks of equal rows (a dense layer after a global average pool that freeze
  folded into it: one weight per input channel, repeated over the channel's H * W positions; a bias that is
  one value per layer or per channel) is stored one row per block and rebuilt by ``Expand`` and ``Reshape``.
* An array is stored once however many synapses read it (a layer with several sources).

Cast, Mul, Expand and Reshape are in every opset this package writes (no DequantizeLinear, which needs
opset 21 for int16).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

INTEGER_DTYPES = (np.int8, np.int16, np.int32, np.int64)


def narrowest_integers(values: np.ndarray) -> np.ndarray:
    """``values`` (integers) in the narrowest of :data:`INTEGER_DTYPES` that holds them all."""
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for dtype in INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    raise ValueError(f"integers {low}..{high} exceed int64")


def common_power_of_two(values: np.ndarray) -> int:
    """The largest s with every value a multiple of 2**s (0 for all zeros)."""
    bits = int(np.bitwise_or.reduce(values.reshape(-1).astype(np.int64))) if values.size else 0
    return (bits & -bits).bit_length() - 1 if bits else 0


def block_rows(values: np.ndarray, groups: Sequence[int]) -> tuple[int, np.ndarray] | None:
    """(g, one row per block) for the fewest blocks g of ``groups`` such that axis 0 of ``values`` splits into g
    blocks of equal rows; None when no candidate does (or every block is one row)."""
    rows = values.shape[0] if values.ndim else 0
    for count in sorted(set(groups)):
        if count <= 0 or rows % count or rows == count:
            continue
        blocks = values.reshape(count, rows // count, *values.shape[1:])
        if np.array_equal(blocks, np.broadcast_to(blocks[:, :1], blocks.shape)):
            return count, blocks[:, :1]
    return None


def stored_constant(builder: Any, values: np.ndarray, dtype: Any, hint: str, groups: Sequence[int] = (),
                    shape: tuple[int, ...] | None = None) -> str:
    """The graph tensor ``values`` as ``dtype`` (of shape ``shape``, default the values' own), stored compactly
    (module doc): narrowed when ``values`` are integers, one row per block when axis 0 splits into 1 or one of
    ``groups`` blocks of equal rows. ``builder``: onnx_writer's _Builder (const, op, cast)."""
    values = np.asarray(values)
    shape = tuple(values.shape) if shape is None else tuple(shape)
    blocked = block_rows(values, (1, *groups))
    stored = values if blocked is None else blocked[1]
    onnx_type = builder.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    if values.dtype.kind in "iu":
        power = common_power_of_two(stored)
        narrow = narrowest_integers(stored >> power if power else stored)
        if blocked is None:
            narrow = narrow.reshape(shape)
        if narrow.dtype == np.dtype(dtype) and not power and blocked is None:
            return builder.const(narrow, dtype, hint)
        name = builder.const(narrow, narrow.dtype, hint)
        name = name if narrow.dtype == np.dtype(dtype) else builder.cast(name, onnx_type)
        if power:
            name = builder.op("Mul", [name, builder.const(1 << power, dtype, "scale")])
    elif blocked is None:
        return builder.const(stored.astype(dtype).reshape(shape), dtype, hint)
    else:
        name = builder.const(stored.astype(dtype), dtype, hint)
    if blocked is None:
        return name
    count, _ = blocked
    full = (count, values.shape[0] // count, *values.shape[1:])
    return builder.reshape(builder.op("Expand", [name, builder.const(list(full), np.int64, "shape")]), shape)
