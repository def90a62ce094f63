"""lava-dl netx's dense weight arithmetic, ported: what Lava's Dense computes with when netx loads an integer
weight matrix (:func:`optimize_weight_bits`), and the deployable layer weights that compute the same
(:func:`netx_dense_weights`); the netx reader (netx.py) uses them for every dense layer."""

from __future__ import annotations

import numpy as np

from dsatgo_deploy import loihi
from dsatgo_deploy.errors import UserError


def optimize_weight_bits(weight: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    """lava-dl netx's ``optimize_weight_bits`` (lava/lib/dl/netx/utils.py, lava-dl 0.6.0), ported
    line by line without its prints: ``(w', num_weight_bits, weight_exp, sign_mode)`` with sign_mode
    'mixed', 'excitatory' or 'inhibitory'. ``weight`` holds integers (netx reads them with astype(int)).
    An all-zero matrix raises OverflowError, as in netx."""
    weight = np.asarray(weight)
    max_weight = np.max(weight)
    min_weight = np.min(weight)
    if max_weight > 254 and min_weight < 0:
        weight = np.clip(weight, -256, 254)
        max_weight = np.max(weight)
    if min_weight < -256 and max_weight > 0:
        weight = np.clip(weight, -256, 254)
        min_weight = np.min(weight)
    if max_weight < 0:
        sign_mode, is_signed = "inhibitory", 0
    elif min_weight >= 0:
        sign_mode, is_signed = "excitatory", 0
    else:
        sign_mode, is_signed = "mixed", 1
    with np.errstate(divide="ignore"):
        if sign_mode == "mixed":
            scale = np.min([127 / max_weight, -128 / min_weight])
        elif sign_mode == "inhibitory":
            scale = -256 / min_weight
        else:
            scale = 255 / max_weight
        scale_bits = np.floor(np.log2(scale)) + is_signed
    n = 8
    while n > 0:
        if np.sum(np.abs(weight / (2**n) - np.round(weight / (2**n)))) == 0:
            break
        n -= 1
    n -= is_signed
    num_weight_bits = 8 - scale_bits - n
    weight_exponent = -scale_bits
    weight = np.left_shift(weight.astype(np.int32), int(scale_bits))
    return weight.astype(int), int(num_weight_bits), int(weight_exponent), sign_mode


def _representable(weight: np.ndarray, num_weight_bits: int) -> np.ndarray:
    import torch

    return loihi.representable_weights(torch.from_numpy(np.asarray(weight, dtype=np.int64)), num_weight_bits).numpy()


def netx_dense_weights(weight: np.ndarray, input_message_bits: int = 0) -> tuple[np.ndarray, int, int, bool]:
    """The weights, num_weight_bits and weight_exp of a layer that computes what Lava's Dense computes
    when netx loads the integer matrix ``weight`` (module doc), and whether that differs from the
    plain sum of ``weight`` (netx's lossy corners). Raises UserError (no layer name: the caller adds
    it) when no valid layer does, OverflowError for an all-zero matrix (netx cannot load it)."""
    weight = np.asarray(weight, dtype=np.int64)
    scaled, bits, exponent, _ = optimize_weight_bits(weight)
    used = _representable(scaled, bits)  # what Lava's Dense multiplies with, before the shift of the sum
    if not used.any():
        return np.zeros_like(weight), loihi.WEIGHT_BITS, 0, bool(weight.any())
    shift = -exponent
    lossy = not (shift >= 0 and np.array_equal(used, weight << shift))
    if shift >= 0 and not np.any(used % (1 << shift)):
        plain = used >> shift
        max_message = (1 << input_message_bits) if input_message_bits else 1
        no_wrap = input_message_bits == 0 or int(np.abs(used).max()) * weight.shape[1] * max_message < 2**31
        if no_wrap and np.array_equal(_representable(plain, loihi.WEIGHT_BITS), plain):
            return plain, loihi.WEIGHT_BITS, 0, lossy
    if (np.array_equal(_representable(used, bits), used) and 1 <= bits <= 9
            and loihi.WEIGHT_EXP_RANGE[0] <= exponent <= loihi.WEIGHT_EXP_RANGE[1]):
        return used, bits, exponent, lossy
    raise UserError(f"netx maps these weights to {bits}-bit weights with exponent {exponent} that no deployable layer "
                    "can hold")
