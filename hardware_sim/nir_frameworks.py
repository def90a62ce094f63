"""A NIR graph run in other frameworks, each through its own importer, into a :class:`RunRecord`.

One runner per framework that installs beside torch 2.13 (docs/interop.md):

* ``snntorch``: ``snntorch.import_nir.import_from_nir(graph)``, called once per timestep;
* ``norse``: ``norse.torch.from_nir(graph, dt=dt)``, called once per timestep carrying its state
  (Norse ignores the file's dt: it is passed);
* ``sinabs``: ``sinabs.from_nir(graph, batch_size=B)``, called once on (B * T, ...), every LIF set to
  one spike per step and a reset to zero (what NIR's LIF does; Sinabs' defaults differ).

Rockpool and spyx read NIR too but cannot run here (:data:`NOT_RUNNABLE` says why).

Each run records, per timestep, the output spikes of every spiking node (``nir.LIF``, ``nir.CubaLIF``,
``nir.IF``), keyed by the node's key in the graph, (B, T, n) with n in the node's (C, H, W) order, and
the graph's output: the predicted class is the argmax of the output summed over T (a readout's
current, or the last layer's spikes), and the readout trace is that sum after each step, in the
file's units.

The caller passes T and dt (dsatgo_deploy/importers/nir.py graph_timing decides them, for the NIR importer
too). The input is presented unchanged at every step (direct encoding), after the host normalisation
the metadata states (``input_mean``, ``input_std``).

Consumer quirks handled here, each measured by tests/export/test_nir_consumers.py:
snnTorch 1.0.0 and Norse 1.1.0 map ``nir.Flatten(start_dim=0)`` to ``torch.nn.Flatten(0)``, which
also flattens the batch: the imported Flatten is moved one axis on (NIR shapes exclude the batch),
so whole batches run. Sinabs 3.1.3 cannot import a multi-dimensional LIF (its ``any(node.v_leak)``
check): v_leak, which it reads for nothing else, is given to it flat. Sinabs keeps its state
between calls: it is reset before each batch.

A framework that cannot run the graph (missing, Rockpool and spyx, an importer that refuses a node type,
an import whose spiking node has no module to record) raises :class:`FrameworkUnavailable` with the
reason: parity reports the side as not run instead of failing.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
from typing import Any, Callable

import numpy as np
import torch

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.runs import RunRecord

FRAMEWORKS = ("snntorch", "norse", "sinabs")
#: The module each framework's NIR importer lives in: the framework is installed when it imports.
IMPORTER_MODULES = {"snntorch": "snntorch.import_nir", "norse": "norse.torch", "sinabs": "sinabs.nir"}
#: Frameworks that read NIR but cannot run here, and why (docs/interop.md has the reproducers).
NOT_RUNNABLE = {
    "rockpool": "Rockpool 3.1.0's NIR importer reads node.tau_mem, which no nir.LIF of nir 1.x has",
    "spyx": "spyx 1.0.0 needs flax >= 0.12.7, hence jax >= 0.10 and numpy >= 2; this project pins numpy < 2",
}
KNOWN_FRAMEWORKS = FRAMEWORKS + tuple(NOT_RUNNABLE)
#: Frameworks that read a file written to the NIR spec as the spec means it (Norse ignores r and dt; Sinabs
#: reads tau in timesteps: each needs the file written for it, export/nir_writer.py NIR_FOR).
READS_THE_SPEC = ("snntorch",)
SIDE_PREFIX = "nir:"  # a run of framework F is named "nir:F" (a parity side; float arithmetic)
DEFAULT_BATCH = 256


class FrameworkUnavailable(Exception):
    """A framework that cannot run here: not installed, or unable to run (the message says which)."""


def unavailable_reason(framework: str) -> str | None:
    """Why ``framework`` cannot run here ("not installed ...", "cannot run: ..."), None when it can."""
    if framework in NOT_RUNNABLE:
        installed = importlib.util.find_spec(framework) is not None
        return f"cannot run: {NOT_RUNNABLE[framework]}" if installed else f"not installed ({NOT_RUNNABLE[framework]})"
    try:
        importlib.import_module(IMPORTER_MODULES[framework])
    except ImportError as error:
        return f"not installed ({error})"
    return None


def read_graph(path: str) -> Any:
    """The NIR graph of ``path``; a UserError naming the file when it is not one."""
    import nir

    try:
        return nir.read(str(path))
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise UserError(f"{path}: not a readable NIR file ({type(error).__name__}: {error})") from None


def input_shape(graph: Any) -> tuple[int, ...]:
    """The shape of one sample (no batch): the graph's ``nir.Input`` node."""
    import nir

    for node in graph.nodes.values():
        if isinstance(node, nir.Input):
            return tuple(int(d) for d in np.asarray(node.input_type["input"]).reshape(-1))
    raise UserError("the NIR graph has no nir.Input node: its input shape is unknown")


def spiking_nodes(graph: Any) -> list[str]:
    """The keys of the graph's spiking nodes, in the graph's order."""
    import nir

    return [key for key, node in graph.nodes.items() if isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF))]


def host_input(graph: Any, x: np.ndarray) -> np.ndarray:
    """x (B, *input shape) as the graph's input node takes it: normalised per channel where the metadata
    says the host normalises (``input_mean``, ``input_std``)."""
    shape = input_shape(graph)
    x = np.asarray(x, dtype=np.float32).reshape(-1, *shape)
    meta = graph.metadata or {}
    if "input_mean" not in meta:
        return x
    per_channel = (1, -1) + (1,) * (len(shape) - 1)
    mean, std = (np.asarray(meta[k], dtype=np.float64).reshape(per_channel) for k in ("input_mean", "input_std"))
    return ((x - mean) / std).astype(np.float32)


class _Recorder:
    """Forward hooks on the modules of the spiking nodes: the spikes of every call, (B, n) per call."""

    def __init__(self, module: torch.nn.Module, keys: list[str]) -> None:
        from nirtorch.utils import sanitize_name  # the importers name a node's module so

        modules = dict(module.named_modules())
        missing = [key for key in keys if sanitize_name(key) not in modules]
        if missing:
            raise FrameworkUnavailable(f"cannot run: its import has no module of the spiking node(s) {missing} "
                                       "(merged into another), whose spikes therefore cannot be recorded")
        self.calls: dict[str, list[np.ndarray]] = {key: [] for key in keys}
        for key in keys:
            modules[sanitize_name(key)].register_forward_hook(self._hook(key))

    def _hook(self, key: str) -> Callable:
        def record(_module, _inputs, out) -> None:
            spikes = out[0] if isinstance(out, tuple) else out
            self.calls[key].append(spikes.detach().reshape(len(spikes), -1).bool().numpy())
        return record

    def take(self, batch: int) -> dict[str, np.ndarray]:
        """The calls since the last take as (batch, T, n): T calls of (batch, n), or one of (batch * T, n)."""
        taken = {key: np.stack(calls, axis=1).reshape(batch, -1, calls[0].shape[-1])
                 for key, calls in self.calls.items()}
        for calls in self.calls.values():
            calls.clear()
        return taken


def batch_safe_flatten(module: torch.nn.Module, graph: Any) -> int:
    """Move each imported ``torch.nn.Flatten`` that kept its ``nir.Flatten``'s axes one axis on (NIR's axes
    exclude the batch; snnTorch and Norse keep them, so Flatten(0) flattens the batch too). Returns how many."""
    import nir
    from nirtorch.utils import sanitize_name

    modules = dict(module.named_modules())
    moved = 0
    for key, node in graph.nodes.items():
        sub = modules.get(sanitize_name(key))
        if isinstance(node, nir.Flatten) and isinstance(sub, torch.nn.Flatten) and node.start_dim >= 0 \
                and sub.start_dim == node.start_dim:
            sub.start_dim += 1
            sub.end_dim += 1 if sub.end_dim >= 0 else 0
            moved += 1
    return moved


@contextlib.contextmanager
def _importing(framework: str):
    """A framework's importer that refuses the graph (a node type it does not map, say) makes the side one that
    cannot run, with the importer's own words, rather than a failure."""
    try:
        yield
    except Exception as error:  # the importer is the framework's code: any refusal of it is reported as such
        raise FrameworkUnavailable(f"cannot run: {framework}'s NIR importer raised {type(error).__name__}: "
                                   f"{error}") from error


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def _step_by_step(module: torch.nn.Module, x: torch.Tensor, timesteps: int, stateful: bool) -> np.ndarray:
    """The graph's output at each of T calls (B, T, n_out); ``stateful``: the module takes and returns its
    state (Norse), else it keeps it inside (snnTorch)."""
    outputs, state = [], None
    for _ in range(timesteps):
        if stateful:
            out, state = module(x, state)
        else:
            out = _first(module(x))
        outputs.append(out.reshape(len(x), -1).numpy())
    return np.stack(outputs, axis=1)


def run_snntorch(graph: Any, x: np.ndarray, timesteps: int, batch_size: int) -> tuple[dict, np.ndarray]:
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    with _importing("snntorch"), contextlib.redirect_stdout(io.StringIO()):  # it prints a line per import,
        module = import_from_nir(graph)                                      # which would spoil --json
    batch_safe_flatten(module, graph)

    def run_batch(xb: torch.Tensor) -> np.ndarray:
        snntorch.utils.reset(module)  # its neurons keep their potentials between calls
        return _step_by_step(module, xb, timesteps, stateful=False)

    return _per_batch(module, graph, x, batch_size, run_batch)


def run_norse(graph: Any, x: np.ndarray, timesteps: int, batch_size: int, dt: float) -> tuple[dict, np.ndarray]:
    from norse.torch import from_nir

    with _importing("norse"):
        module = from_nir(graph, dt=dt)
    batch_safe_flatten(module, graph)
    return _per_batch(module, graph, x, batch_size, lambda xb: _step_by_step(module, xb, timesteps, stateful=True))


def sinabs_v_leak_workaround(graph: Any) -> None:
    """Sinabs 3.1.3 tests ``any(node.v_leak) != 0``: on a (C, H, W) LIF, any() iterates over 2-D arrays and
    raises 'truth value of an array is ambiguous'. It reads v_leak for nothing else: a 1-D view passes."""
    import nir

    for node in graph.nodes.values():
        if isinstance(node, nir.LIF) and np.ndim(node.v_leak) > 1:
            node.v_leak = np.asarray(node.v_leak).reshape(-1)


def run_sinabs(graph: Any, x: np.ndarray, timesteps: int, batch_size: int) -> tuple[dict, np.ndarray]:
    """Sinabs takes (B * T, ...) with B fixed at import: one import per batch size."""
    import sinabs.layers
    from sinabs.activation import MembraneReset, SingleSpike

    sinabs_v_leak_workaround(graph)
    imported: dict[int, tuple[torch.nn.Module, _Recorder]] = {}
    spikes: dict[str, list[np.ndarray]] = {}
    outputs = []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start:start + batch_size])
        size = len(xb)
        if size not in imported:
            with _importing("sinabs"):
                module = sinabs.from_nir(graph, batch_size=size)
            for sub in module.modules():
                if isinstance(sub, sinabs.layers.LIF):  # NIR's LIF: one spike per step, reset to v_reset = 0
                    sub.spike_fn, sub.reset_fn = SingleSpike, MembraneReset()
            imported[size] = module, _Recorder(module, spiking_nodes(graph))
        module, recorder = imported[size]
        for sub in module.modules():
            if isinstance(sub, sinabs.layers.StatefulLayer):
                sub.reset_states()
        repeated = xb.unsqueeze(1).expand(size, timesteps, *xb.shape[1:]).reshape(-1, *xb.shape[1:])
        out = _first(module(repeated))
        outputs.append(out.reshape(size, timesteps, -1).numpy())
        for key, value in recorder.take(size).items():
            spikes.setdefault(key, []).append(value)
    return {k: np.concatenate(v) for k, v in spikes.items()}, np.concatenate(outputs)


def _per_batch(module: torch.nn.Module, graph: Any, x: np.ndarray, batch_size: int,
               run_batch: Callable[[torch.Tensor], np.ndarray]) -> tuple[dict, np.ndarray]:
    recorder = _Recorder(module, spiking_nodes(graph))
    spikes: dict[str, list[np.ndarray]] = {}
    outputs = []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start:start + batch_size])
        outputs.append(run_batch(xb))
        for key, value in recorder.take(len(xb)).items():
            spikes.setdefault(key, []).append(value)
    return {k: np.concatenate(v) for k, v in spikes.items()}, np.concatenate(outputs)


def run_framework(framework: str, graph: Any, x: np.ndarray, timesteps: int, dt: float,
                  batch_size: int = DEFAULT_BATCH) -> RunRecord:
    """Run ``graph`` on samples x (B, ...) for T steps in ``framework``'s own import of it: a RunRecord named
    ``nir:<framework>`` (:data:`SIDE_PREFIX`) whose layers are the graph's spiking node keys. FrameworkUnavailable when the
    framework cannot run here."""
    if framework not in KNOWN_FRAMEWORKS:
        raise UserError(f"unknown NIR framework {framework!r} (known: {', '.join(KNOWN_FRAMEWORKS)})")
    reason = unavailable_reason(framework)
    if reason is not None:
        raise FrameworkUnavailable(reason)
    x = host_input(graph, x)
    with torch.no_grad():
        if framework == "snntorch":
            spikes, outputs = run_snntorch(graph, x, timesteps, batch_size)
        elif framework == "norse":
            spikes, outputs = run_norse(graph, x, timesteps, batch_size, dt)
        else:
            spikes, outputs = run_sinabs(graph, x, timesteps, batch_size)
    trace = np.cumsum(outputs, axis=1)  # a readout's accumulated current (or spike count) after each step
    return RunRecord(SIDE_PREFIX + framework, spikes, trace[:, -1].argmax(axis=1), trace)
