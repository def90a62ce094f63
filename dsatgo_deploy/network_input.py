"""How the analog input reaches a deployable network's first layer (dsatgo_deploy.network's InputEncoding):
direct encoding as graded payloads, binary spikes, or the input neurons' bias (lava-dl's way)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import loihi

INPUT_ENCODINGS = ("graded", "spikes", "bias")


@dataclass
class InputEncoding:
    """How the analog input reaches the first layer.

    ``graded``: direct encoding as graded spikes. Every sample timestep the
    input x is sent as the integer payload ``m = clip(round(x' / step), lo, hi)``
    with ``bits`` bits (signed or not), where x' = (x - mean[c]) / std[c] per
    input channel c when the model normalises its input (the host does this
    before sending), else x' = x. The first layer's synapse multiplies payloads
    (Loihi 2 graded spikes; Lava Dense/Conv with num_message_bits = bits).

    ``spikes``: binary spikes (``bits = 0``; Lava Dense/Conv with
    num_message_bits = 0): every non-zero entry of x is one spike,
    ``m = (x != 0)``; step, signed, mean and std are unused (mean/std must be
    None). Build it with :meth:`InputEncoding.spikes`. This is what lava-dl netx
    networks read with ``input_message_bits = 0``.

    ``bias``: no messages: each sample's payloads (as graded, 13-bit signed: ``bits = 13``,
    ``signed``) become the bias mantissa of the identity LIF layer reading the input, held for
    the sample's T steps, with that layer's bias_exp; its a(t) is 0 (lava-dl drives netx's input
    neuron so: ``in_layer.neuron.bias_mant`` set to the image). Static samples only. Build it
    with :meth:`InputEncoding.bias`.
    """

    kind: str = "graded"
    bits: int = 8
    step: float = 1.0 / 255.0
    signed: bool = False
    mean: list[float] | None = None
    std: list[float] | None = None

    @classmethod
    def spikes(cls) -> "InputEncoding":
        """Binary spike input (bits 0)."""
        return cls(kind="spikes", bits=0, step=1.0)

    @classmethod
    def bias(cls, step: float = 1.0) -> "InputEncoding":
        """Samples as the input neuron's bias mantissa (13-bit signed)."""
        return cls(kind="bias", bits=loihi.BIAS_MANT_BITS, step=step, signed=True)

    def __post_init__(self) -> None:
        if self.kind not in INPUT_ENCODINGS:
            raise ValueError(f"input encoding kind must be one of {INPUT_ENCODINGS}, got {self.kind!r}")
        if self.kind == "spikes":
            if self.bits != 0:
                raise ValueError(f"spike input has bits 0 (binary spikes), got {self.bits}; use InputEncoding.spikes()")
            if self.mean is not None or self.std is not None:
                raise ValueError("spike input is not normalised: mean and std must be None")
            if self.signed:
                raise ValueError("spike input is not signed")
        elif self.kind == "bias" and (self.bits != loihi.BIAS_MANT_BITS or not self.signed):
            raise ValueError(f"bias input holds {loihi.BIAS_MANT_BITS}-bit signed bias mantissas (bits "
                             f"{loihi.BIAS_MANT_BITS}, signed); use InputEncoding.bias()")
        elif not 1 <= self.bits <= 24:
            raise ValueError(f"input encoding bits must be in [1, 24], got {self.bits}")
        if not (np.isfinite(self.step) and self.step > 0):
            raise ValueError(f"input encoding step must be a positive number, got {self.step}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("input encoding needs both mean and std, or neither")
        if self.std is not None:
            self.mean, self.std = [float(v) for v in self.mean], [float(v) for v in self.std]
            if len(self.mean) != len(self.std) or not all(np.isfinite(self.mean)) or min(self.std) <= 0:
                raise ValueError("input encoding mean and std must be equally long, finite, std > 0")

    @property
    def messages(self) -> int:
        """Bits of the messages the input sends: 0 for spikes (and for bias input, which sends none)."""
        return self.bits if self.kind == "graded" else 0

    @property
    def payload_range(self) -> tuple[int, int]:
        if self.kind == "spikes":
            return 0, 1
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """x' = (x - mean) / std per channel (axis 1 of x, shaped (B, C, ...)), in float64; x when not normalising."""
        return self._normalized(x).numpy()

    def _normalized(self, x: np.ndarray) -> torch.Tensor:
        # float64 torch ops are the same IEEE operations as numpy's, on every core.
        array = np.asarray(x)
        if array.dtype.kind not in "biuf":
            array = array.astype(np.float64)
        if not (array.flags.writeable and array.flags.c_contiguous):  # read-only, reversed, strided views
            array = np.array(array, order="C")
        values = torch.from_numpy(array).to(torch.float64, copy=True)
        if self.mean is None:
            return values
        if values.ndim < 2 or values.shape[1] != len(self.mean):
            raise ValueError(f"normalised input needs samples shaped (B, {len(self.mean)}, ...), got {tuple(values.shape)}")
        shape = (1, -1) + (1,) * (values.ndim - 2)
        mean = torch.tensor(self.mean, dtype=torch.float64).reshape(shape)
        std = torch.tensor(self.std, dtype=torch.float64).reshape(shape)
        return values.sub_(mean).div_(std)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Analog input (B, *input_shape) -> integer payloads (int64): x' / step rounded to nearest
        (ties to even) and clipped to the payload range; spikes: 1 where x != 0, else 0."""
        if self.kind == "spikes":
            return (np.asarray(x) != 0).astype(np.int64)
        lo, hi = self.payload_range
        scaled = self._normalized(x).div_(self.step).round_().clamp_(lo, hi)
        return scaled.to(torch.int64).numpy()
