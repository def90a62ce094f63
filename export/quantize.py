"""Quantize: a frozen float network -> a deployable network in Loihi fixed point.

One scale per layer, shared by weights, bias and thresholds. With ``q_in`` the
float value of one input message unit (1 for spikes, the input step for graded
input) and ``s`` the layer's scale (integer units of the synaptic input ``a``
per unit of float current):

    W_int    = round(W * q_in * s / 2**weight_exp)     8-bit mantissa (even if mixed sign)
    bias     = round(b * s * 64 / 2**bias_exp)         13-bit mantissa, bias_exp = 6
    vth(t)   = round(theta(t) * s)                     17 bit; fires when v > vth << 6
    dv       = round(4096 * (1 - tau)), du = 4095      (no synaptic current memory)
    du       = 4095 - round(4096 * alpha)              (a layer with a synaptic current, current_tau alpha)
    readout: dv = 0 (integrates; its output mean_t I), or round(4096 * (1 - tau)) for a leaky one

Conv layers take no weight exponent (Lava's Conv ignores it): when the limits
below bind, their mantissa range shrinks instead. A layer with k spike sources
(a folded residual ADD) sees messages up to k.

so that v = 64 * s * U. The scale is the largest the 8-bit weight mantissa
allows (s0 = 254 / (max|W| q_in)), times 2**weight_exp, with weight_exp the
largest value in [-8, 7] (preferring 0, which netx can express) that keeps
vth <= 2**17 - 1, |a| < 2**17 (so a << 6 stays within u's 24 bits) and, for
the readout, T * |a| < 2**17 (v's 24 bits). |a| is taken from calibration
data when given (with a 2x margin), else from the worst case.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from dsatgo_deploy import loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT, ConvGeometry, DeployableNetwork, InputEncoding, Layer

from .freeze import FrozenLayer, FrozenNetwork, float_statistics, normalized_input
from .thresholds import one_threshold_per_layer

SYNAPSE_LIMIT = 1 << 17  # |a| below this keeps a << 6 inside u's 24 bits
#: A spiking layer whose smallest positive threshold maps to fewer integer units
#: than this cannot be represented next to its 8-bit weights (the weights are
#: over 64x the threshold): export refuses it rather than fire on noise.
MIN_THRESHOLD_MANTISSA = 4
BIAS_EXP = 6  # netx fixes bias_exp at 6; one bias unit is one unit of a
CALIBRATION_MARGIN = 2.0


@dataclass
class LayerQuantization:
    """What quantization did to one layer (numbers for export_report.json)."""

    name: str
    scale: float
    weight_exp: int
    max_abs_weight_float: float
    weights_rounded: int  # weights whose integer differs from the exact scaled value by >= 0.25
    weights_clipped: int
    weights_zeroed: int  # non-zero float weights that became 0
    bias_clipped: int
    thresholds_clipped: int
    max_abs_synaptic_input: float  # estimate used to choose the exponent
    threshold_schedule_float: list[float] = field(default_factory=list)
    threshold_schedule_int: list[int] = field(default_factory=list)


def _weight_mantissa_limits(weight: np.ndarray) -> tuple[int, int, int]:
    """(lo, hi, step) of the integer weights Lava's Dense represents exactly."""
    if np.all(weight >= 0):
        return 0, 255, 1
    if np.all(weight <= 0):
        return -255, 0, 1
    return -256, 254, 2


def quantize_layer_weights(weight: np.ndarray, multiplier: float) -> tuple[np.ndarray, int]:
    """Round W * multiplier to representable mantissas; return (ints, clipped count)."""
    lo, hi, step = _weight_mantissa_limits(weight)
    scaled = weight * multiplier / step
    rounded = np.rint(scaled) * step
    clipped = int(np.sum((rounded < lo) | (rounded > hi)))
    return np.clip(rounded, lo, hi).astype(np.int64), clipped


def quantize_thresholds(theta: np.ndarray, scale: float) -> tuple[np.ndarray, int]:
    """vth = round(theta * scale) (ties to even), clipped to 17 bits; returns (mantissas int64, clipped count)."""
    exact = np.rint(np.asarray(theta, dtype=np.float64) * scale)
    clipped = int(np.sum((exact < loihi.THRESHOLD_RANGE[0]) | (exact > loihi.THRESHOLD_RANGE[1])))
    return np.clip(exact, *loihi.THRESHOLD_RANGE).astype(np.int64), clipped


def one_threshold_mantissas(net: DeployableNetwork, per_layer: FrozenNetwork) -> dict[str, int]:
    """One threshold mantissa per spiking layer of ``net`` (a target that has no schedules: netx): the
    per-layer policy's threshold (export/thresholds.py calibrate_per_layer) on the layer's integer scale."""
    return {layer.name: int(quantize_thresholds(frozen.threshold_schedule[:1], layer.scale)[0][0])
            for layer, frozen in zip(net.layers, per_layer.layers) if layer.spiking}


def choose_input_encoding(frozen: FrozenNetwork, calibration_x: np.ndarray | None, bits: int = 8) -> InputEncoding:
    """Graded-spike encoding of the first layer's input (normalised when the model normalises).

    The data's own quantum when it has one and no normalisation applies (digits: 1/16,
    exact), else max|x'| / (2**(bits-1) - 1) for signed or / (2**bits - 1) for unsigned x'.
    """
    normalize = frozen.normalize or {}
    mean, std = normalize.get("mean"), normalize.get("std")
    seen = normalized_input(frozen, calibration_x) if calibration_x is not None and len(calibration_x) else None
    signed = bool(mean is not None or (seen is not None and np.min(seen) < 0))
    if frozen.input_quantum and mean is None:
        return InputEncoding(kind="graded", bits=bits, step=float(frozen.input_quantum), signed=signed)
    if seen is not None:
        peak = float(np.max(np.abs(seen)))
    elif mean is not None:  # worst case of x in [0, 1]
        peak = float(max(max(abs(0 - m), abs(1 - m)) / s for m, s in zip(mean, std)))
    else:
        peak = 1.0
    levels = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    return InputEncoding(kind="graded", bits=bits, step=(peak or 1.0) / levels, signed=signed, mean=mean, std=std)


def _choose_scale(layer: FrozenLayer, base_scale: float, theta_max: float, max_current: float, steps: int
                  ) -> tuple[int, float]:
    """(weight_exp, scale) of a layer: the largest scale that fits Loihi's bit widths (module doc)."""
    accumulation = 1 if layer.spiking else steps  # the readout integrates T steps without leak

    def fits(exp: int) -> bool:
        scale = base_scale * 2.0 ** exp
        return (scale * theta_max <= loihi.THRESHOLD_RANGE[1]
                and scale * max_current * accumulation < SYNAPSE_LIMIT
                and scale * float(np.max(np.abs(layer.bias), initial=0.0)) <= loihi.BIAS_MANT_RANGE[1])

    weight_exp = 0
    if layer.kind == "conv":
        # Lava's Conv ignores weight exponents: shrink the mantissa range instead.
        while not fits(0) and base_scale >= 1e-9:
            base_scale /= 2.0
        if not fits(0):
            raise UserError(f"layer '{layer.name}': cannot fit Loihi's bit widths (max |current| "
                            f"{max_current:.3g}, max threshold {theta_max:.3g})")
        scale = base_scale
    else:
        while not fits(weight_exp) and weight_exp > loihi.WEIGHT_EXP_RANGE[0]:
            weight_exp -= 1
        if not fits(weight_exp):
            raise UserError(f"layer '{layer.name}': cannot fit Loihi's bit widths even with weight exponent "
                            f"{weight_exp} (max |current| {max_current:.3g}, max threshold {theta_max:.3g})")
        # Raise the exponent while the threshold would have fewer than 8 bits of resolution.
        while (layer.spiking and base_scale * 2.0 ** weight_exp * theta_max < 256
               and weight_exp < loihi.WEIGHT_EXP_RANGE[1] and fits(weight_exp + 1)):
            weight_exp += 1
        scale = base_scale * 2.0 ** weight_exp
    return weight_exp, scale


def _neuron_fields(layer: FrozenLayer, theta: np.ndarray | None, scale: float, weight_exp: int, max_abs_w: float,
                   q_in: float, threshold_policy: str) -> tuple[str, np.ndarray, int, int]:
    """(neuron kind, threshold mantissas, thresholds clipped, dv) of a layer on its integer scale."""
    if layer.spiking:
        positive = theta[theta > 0]
        if positive.size and float(positive.min()) * scale < MIN_THRESHOLD_MANTISSA:
            raise UserError(
                f"layer '{layer.name}': field 'weight': the weights do not fit 8 bits next to the threshold: "
                f"with the largest weight at the 8-bit limit{' and weight exponent ' + str(weight_exp) if layer.kind == 'dense' else ''}, "
                f"threshold {float(positive.min()):.4g} becomes {float(positive.min()) * scale:.2f} integer units "
                f"(< {MIN_THRESHOLD_MANTISSA}); max |weight| {max_abs_w:.4g} is {max_abs_w * q_in / float(positive.min()):.0f}x the threshold")
        vth, thresholds_clipped = quantize_thresholds(theta, scale)
        if threshold_policy == "per-layer":
            vth = vth[:1]
        neuron = "cuba_lif" if threshold_policy == "per-layer" else "scheduled_lif"
        dv = int(round(4096 * (1.0 - layer.tau)))
    else:
        neuron = "readout"
        thresholds_clipped = 0
        vth = np.zeros(0, dtype=np.int64)
        dv = 0 if layer.tau is None else int(round(4096 * (1.0 - layer.tau)))  # DS-ATGO's readout: no leak
    return neuron, vth, thresholds_clipped, dv


def current_decay(layer: FrozenLayer) -> int:
    """Loihi's du of a layer: 4095 (no synaptic current) or the one whose factor 4096 - (du + 1) is 4096 alpha."""
    if layer.current_tau is None:
        return loihi.CURRENT_DECAY_RANGE[1]
    return loihi.CURRENT_DECAY_RANGE[1] - int(round(loihi.DECAY_UNITY * layer.current_tau))


def quantize(
    frozen: FrozenNetwork,
    calibration_x: np.ndarray | None = None,
    input_bits: int = 8,
    threshold_policy: str = "schedule",
    provenance: dict | None = None,
    max_currents: dict[str, float] | None = None,
) -> tuple[DeployableNetwork, list[LayerQuantization]]:
    """Quantize a frozen network. threshold_policy: 'schedule' (T values per layer)
    or 'per-layer' (one value: the mean of the schedule). ``max_currents``: max |current| per layer of
    ``frozen`` on ``calibration_x`` when the caller has run it already (export/thresholds.py calibrate)."""
    if threshold_policy not in ("schedule", "per-layer"):
        raise UserError(f"unknown threshold policy {threshold_policy!r} (known: schedule, per-layer)")
    encoding = choose_input_encoding(frozen, calibration_x, input_bits)
    if max_currents is None and calibration_x is not None and len(calibration_x):
        max_currents = float_statistics(frozen, calibration_x).max_abs_current
    layers: list[Layer] = []
    reports: list[LayerQuantization] = []
    steps = frozen.timesteps
    for layer in frozen.layers:
        graded = layer.sources == [INPUT]
        q_in = encoding.step if graded else 1.0
        # Several spike sources add before the weights: a message is at most their number.
        max_message = max(abs(v) for v in encoding.payload_range) if graded else len(layer.sources)
        max_abs_w = float(np.max(np.abs(layer.weight)))
        if max_abs_w == 0.0:
            raise UserError(f"layer '{layer.name}': field 'weight': all weights are zero; Loihi export needs a non-zero weight")
        base_scale = 254.0 / (max_abs_w * q_in)  # a per unit current at weight_exp = 0
        if max_currents is not None:
            max_current = CALIBRATION_MARGIN * max_currents[layer.name]
        else:
            per_output = np.abs(layer.weight).reshape(len(layer.weight), -1).sum(axis=1)
            memory = 1.0 / (1.0 - layer.current_tau) if layer.current_tau else 1.0  # a synaptic current sums
            max_current = float(np.max(per_output * q_in * max_message * memory + np.abs(layer.bias)))
        if layer.spiking:
            theta = np.asarray(layer.threshold_schedule, dtype=np.float64)
            if threshold_policy == "per-layer":
                theta = np.full(steps, one_threshold_per_layer(theta))
            theta_max = float(np.max(np.abs(theta)))
        else:
            theta = None
            theta_max = 0.0
        weight_exp, scale = _choose_scale(layer, base_scale, theta_max, max_current, steps)
        multiplier = q_in * scale / 2.0 ** weight_exp
        weight_int, weights_clipped = quantize_layer_weights(layer.weight, multiplier)
        exact = layer.weight * multiplier
        bias_exact = layer.bias * scale * 64 / 2 ** BIAS_EXP
        bias_int = np.rint(bias_exact)
        bias_clipped = int(np.sum((bias_int < loihi.BIAS_MANT_RANGE[0]) | (bias_int > loihi.BIAS_MANT_RANGE[1])))
        bias_int = np.clip(bias_int, *loihi.BIAS_MANT_RANGE).astype(np.int64)
        neuron, vth, thresholds_clipped, dv = _neuron_fields(layer, theta, scale, weight_exp, max_abs_w, q_in,
                                                             threshold_policy)
        conv = None if layer.conv is None else ConvGeometry(layer.conv.input_shape, layer.conv.stride, layer.conv.padding)
        layers.append(Layer(
            name=layer.name, kind=layer.kind, conv=conv, sources=list(layer.sources), weight=weight_int,
            weight_exp=weight_exp,
            bias_mant=bias_int, bias_exp=BIAS_EXP, threshold_schedule=vth,
            current_decay=current_decay(layer), voltage_decay=min(max(dv, 0), 4096),
            spiking=layer.spiking, input_message_bits=encoding.bits if graded else 0, scale=scale, neuron=neuron))
        reports.append(LayerQuantization(
            name=layer.name, scale=scale, weight_exp=weight_exp, max_abs_weight_float=max_abs_w,
            weights_rounded=int(np.sum(np.abs(weight_int - exact) >= 0.25)),
            weights_clipped=weights_clipped,
            weights_zeroed=int(np.sum((weight_int == 0) & (layer.weight != 0))),
            bias_clipped=bias_clipped, thresholds_clipped=thresholds_clipped,
            max_abs_synaptic_input=max_current * scale,
            threshold_schedule_float=[] if theta is None else [float(v) for v in theta],
            threshold_schedule_int=[int(v) for v in vth]))
    net = DeployableNetwork(
        timesteps=steps, input_shape=frozen.input_shape, input_encoding=encoding, layers=layers,
        provenance=dict(provenance or {}),
        quantization={"threshold_policy": threshold_policy, "input_bits": input_bits,
                      "calibration_samples": 0 if calibration_x is None else int(len(calibration_x)),
                      "bias_exp": BIAS_EXP, "calibration_margin": CALIBRATION_MARGIN,
                      "layers": [asdict(r) for r in reports]})
    net.validate("quantized network")
    return net, reports
