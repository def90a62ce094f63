"""The graph builder the ONNX writers (export/onnx_writer.py) share: it collects nodes and initializers, gives every
op a unique output name, states Loihi's integer rules as ONNX ops (wrap, floor shift, decay toward zero; the
writer's module doc says why each is exact) and checks the finished model with ``onnx.checker``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from dsatgo_deploy import loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.onnx_metadata import METADATA_KEY

from .onnx_storage import stored_constant

OPSET = 17


def _onnx():
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("the onnx target needs the 'onnx' package: pip install 'dsatgo-deploy[onnx]'") from None
    return onnx, TensorProto, helper, numpy_helper


class _Builder:
    """Collects nodes and initializers; every op returns its (unique) output name."""

    def __init__(self) -> None:
        self.onnx, self.TP, self.helper, self.numpy_helper = _onnx()
        self.nodes: list = []
        self.initializers: list = []
        self._constants: dict[tuple, str] = {}
        self._stored: dict[tuple, str] = {}
        self._count = 0

    def _fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, dtype: Any, hint: str = "c") -> str:
        array = np.asarray(value, dtype=dtype)
        key = None
        if array.size <= 8:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._constants:
                return self._constants[key]
        name = self._fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        if key is not None:
            self._constants[key] = name
        return name

    def stored(self, values: np.ndarray, dtype: Any, hint: str, groups: tuple[int, ...] = (),
               shape: tuple[int, ...] | None = None) -> str:
        """A large constant stored compactly (export/onnx_storage.py), once per ``hint`` (which names one
        array, e.g. a layer's weights, read by each of the layer's synapses)."""
        key = (hint, np.dtype(dtype).str, shape)
        if key not in self._stored:
            self._stored[key] = stored_constant(self, values, dtype, hint, groups, shape)
        return self._stored[key]

    def i64(self, value: int) -> str:
        return self.const(value, np.int64, "k")

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, output: str | None = None,
           **attrs: Any) -> str:
        out = output or self._fresh(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=self._fresh("n_" + op_type), **attrs))
        return out

    # integer helpers (int64 tensors)
    def add(self, a: str, b: str) -> str:
        return self.op("Add", [a, b])

    def wrap(self, x: str, bits: int) -> str:
        half = 1 << (bits - 1)
        shifted = self.op("Mod", [self.add(x, self.i64(half)), self.i64(1 << bits)], fmod=0)
        return self.op("Sub", [shifted, self.i64(half)], hint=f"wrap{bits}")

    def floor_div(self, x: str, divisor: int) -> str:
        """floor(x / d) for d > 0, exactly: (x - Mod(x, d)) / d."""
        rest = self.op("Mod", [x, self.i64(divisor)], fmod=0)
        return self.op("Div", [self.op("Sub", [x, rest]), self.i64(divisor)])

    def shift(self, x: str, exponent: int) -> str:
        if exponent == 0:
            return x
        if exponent > 0:
            return self.op("Mul", [x, self.i64(1 << exponent)], hint="shl")
        return self.floor_div(x, 1 << -exponent)

    def decay(self, x: str, factor: int) -> str:
        """sign(x f) (|x f| >> 12): Loihi's decay, rounding toward zero."""
        product = self.op("Mul", [x, self.i64(factor)])
        magnitude = self.op("Div", [self.op("Abs", [product]), self.i64(loihi.DECAY_UNITY)])
        return self.op("Mul", [self.op("Sign", [product]), magnitude], hint="decayed")

    def cast(self, x: str, to: int) -> str:
        return self.op("Cast", [x], to=to)

    def reshape(self, x: str, shape: tuple[int, ...]) -> str:
        return self.op("Reshape", [x, self.const(list(shape), np.int64, "shape")])

    def model(self, graph_name: str, inputs: list, outputs: list, metadata: dict, doc: str):
        graph = self.helper.make_graph(self.nodes, graph_name, inputs, outputs, self.initializers)
        model = self.helper.make_model(graph, opset_imports=[self.helper.make_opsetid("", OPSET)],
                                       producer_name="dsatgo-deploy", doc_string=doc)
        model.ir_version = min(model.ir_version, 8)  # opset 17 needs IR 8; older runtimes read it
        self.helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata)})
        self.onnx.checker.check_model(model, full_check=True)
        return model
