"""NIR target: the frozen float network as a Neuromorphic Intermediate Representation graph.

NIR (nir 1.0.x) describes continuous-time neurons; DS-ATGO's neuron is discrete:

    U(t) = tau U(t-1) (1 - S(t-1)) + I(t),   S(t) = 1(U(t) >= theta),   reset to 0

Mapping (forward Euler with step ``dt``, the discretisation NIR's importers use,
e.g. snnTorch's ``import_from_nir``: beta = 1 - dt / tau_mem, input scaled by r dt / tau_mem)::

    nir.LIF  tau_mem = dt / (1 - tau)      r = tau_mem / dt = 1 / (1 - tau)
             v_leak = 0                    v_reset = 0 (DS-ATGO resets to zero)
             v_threshold = theta           dt = 1e-4 s by default (snnTorch's importer
                                           hard-codes dt = 1e-4; pass another dt for
                                           frameworks that let you choose)

    Euler:   v[t] = v[t-1] + dt / tau_mem (v_leak - v[t-1] + r I[t]) = tau v[t-1] + I[t]

so one NIR time step of length dt is one DS-ATGO timestep, and T steps (``timesteps``
in the graph metadata, T dt seconds) make one inference. A framework that integrates
the ODE exactly instead would decay by exp(-(1 - tau)) rather than tau per step; the
metadata says which discretisation the time constants assume. NIR fires on
``v > v_threshold`` and DS-ATGO on ``U >= theta``: they differ only when a potential
equals the threshold exactly.

Synapses: dense layers are ``nir.Affine`` (W, b), conv layers ``nir.Conv2d`` (torch's
cross-correlation, (C, H, W)). Freeze has already folded batch norm, average
pooling and flatten into the synapses (so the graph needs no pooling node); a dense
layer that reads a (C, H, W) source gets a ``nir.Flatten`` (start_dim 0: NIR shapes
exclude the batch) in front. A folded SEW residual ADD is expressed as graph edges:
every source's LIF has an edge into the synapse (or its Flatten), and NIR sums the
inputs of a node.

Input: the ``input`` node carries x' = (x - mean) / std per channel when the model
normalises its input (mean and std are in the metadata; the host normalises), else x,
fed unchanged at every timestep (direct encoding).

Readout: DS-ATGO's readout is non-spiking, its output the mean over T of its input
current I(t) = W m(t) + b. In NIR it is the readout's ``nir.Affine`` wired straight to
the ``output`` node: the graph's output at each step is I(t); sum or average it over
the T steps (argmax gives the class). A network without readout (its last layer
spikes) wires that layer's LIF to ``output``: the output is its spike count over T.

Consumers that read NIR otherwise get a file parameterised for them (``nir_for``, :func:`lif_parameters`,
docs/interop.md): Norse ignores r and the file's dt, Sinabs reads tau in timesteps; the metadata names
the reader (``nir_for``) and how to run the file (``run``).

What NIR cannot express: a per-timestep threshold schedule. NIR's LIF has one
threshold (per neuron, constant in time), so each layer's schedule is collapsed to
the per-layer policy's threshold (export/thresholds.py; the schedule's mean without
calibration data), with a warning that names the layer; the schedule is kept in the
LIF node's metadata. A decay without leak (tau >= 1) has no LIF time constant and
raises a UserError naming the layer.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import TOOL_NAME
from dsatgo_deploy.network import INPUT

from .freeze import FrozenLayer, FrozenNetwork
from .thresholds import one_threshold_per_layer

DEFAULT_DT = 1e-4
# Which consumer a file is parameterised for (docs/interop.md). "spec" and "snntorch" write the same file
# (snnTorch 1.0.0 hard-codes dt = 1e-4 and refuses r != tau / dt); "norse" moves r into the synapse
# (an equivalent NIR graph: r multiplies the LIF's input); "sinabs" states tau in timesteps for exact
# integration with dt = 1 step, the only reading Sinabs 3.1.3 has.
NIR_FOR = ("spec", "snntorch", "norse", "sinabs")
SNNTORCH_DT = 1e-4
#: The synapses' weights and biases are stored in float32: snnTorch, Norse and Sinabs cast them to float32 when
#: they load a file (torch layers), so a consumer computes with exactly the numbers it computed with from
#: float64, in half the bytes. The neurons' parameters stay float64 (beta = 1 - dt / tau_mem must come out as
#: before; one value per layer repeated per neuron, they compress to almost nothing).
SYNAPSE_DTYPE = np.float32
MAPPING = ("forward Euler, one NIR step of dt per DS-ATGO timestep: tau_mem = dt / (1 - tau), "
           "r = tau_mem / dt, v_leak = 0, v_reset = 0 (reset to zero), v_threshold = theta; "
           "beta = 1 - dt / tau_mem = tau")
READOUT = ("the readout is the last layer's Affine wired to 'output': its value at each step is the input current "
           "I(t); the network output is its mean over the T steps (argmax: the class)")


def _nir():
    try:
        import nir
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("the nir target needs the 'nir' package: pip install 'dsatgo-deploy[nir]'") from None
    return nir


def _output_shape(layer: FrozenLayer) -> tuple[int, ...]:
    if layer.conv is None:
        return (int(layer.weight.shape[0]),)
    _, height, width = layer.conv.input_shape
    kh, kw = layer.weight.shape[2:]
    ho = (height + 2 * layer.conv.padding[0] - kh) // layer.conv.stride[0] + 1
    wo = (width + 2 * layer.conv.padding[1] - kw) // layer.conv.stride[1] + 1
    return int(layer.weight.shape[0]), int(ho), int(wo)


def node_names(layer: str) -> dict[str, str]:
    """The NIR node names of a layer: its synapse, LIF and (dense after a (C, H, W) source) Flatten."""
    return {"synapse": f"{layer}.synapse", "lif": f"{layer}.lif", "flatten": f"{layer}.flatten"}


def _thresholds(frozen: FrozenNetwork, per_layer: FrozenNetwork | dict[str, float] | None) -> dict[str, float]:
    """One threshold per spiking layer; warns for each layer whose schedule is collapsed."""
    chosen: dict[str, float] = {}
    given: dict[str, float] = {}
    if isinstance(per_layer, FrozenNetwork):
        given = {layer.name: one_threshold_per_layer(layer.threshold_schedule) for layer in per_layer.layers
                 if layer.spiking}
    elif per_layer is not None:
        given = {name: float(value) for name, value in per_layer.items()}
    for layer in frozen.layers:
        if not layer.spiking:
            continue
        schedule = np.asarray(layer.threshold_schedule, dtype=np.float64)
        if np.ptp(schedule) == 0:
            chosen[layer.name] = float(schedule[0])
            continue
        theta = given.get(layer.name, one_threshold_per_layer(schedule))
        chosen[layer.name] = theta
        shown = ", ".join(f"{v:.4g}" for v in schedule)
        warnings.warn(f"layer '{layer.name}': NIR cannot express a per-timestep threshold schedule ([{shown}]); "
                      f"collapsed to the per-layer threshold {theta:.6g}"
                      + (" (per-layer policy)" if layer.name in given else " (the schedule's mean)"),
                      UserWarning, stacklevel=3)
    return chosen


def lif_parameters(tau: float, dt: float, nir_for: str = "spec") -> tuple[float, float, float]:
    """(tau, r, synapse scale) of the NIR LIF that steps like DS-ATGO's U(t) = tau U(t-1) + I(t), per consumer.

    spec / snntorch / norse (forward Euler, dt in seconds): v += dt / tau_mem (-v + r I), beta = 1 - dt / tau_mem.
    spec: r = tau_mem / dt, synapse unscaled. norse: Norse 1.1.0 ignores r, so r = 1 and the synapse's weight
    and bias are scaled by tau_mem / dt (the same NIR graph). sinabs (exact integration, dt = 1 step):
    v = exp(-1 / tau) v + (1 - exp(-1 / tau)) r I, so tau = -1 / ln(decay) timesteps, r = 1 / (1 - decay).
    """
    if nir_for == "sinabs":
        tau_steps = -1.0 / np.log(tau) if tau > 0 else 0.0
        return float(tau_steps), 1.0 / (1.0 - tau), 1.0
    tau_mem = dt / (1.0 - tau)
    if nir_for == "norse":
        return tau_mem, 1.0, tau_mem / dt
    return tau_mem, tau_mem / dt, 1.0


def _checked_dt(dt: float, nir_for: str) -> float:
    """The file's dt for ``nir_for``; a UserError for an unknown consumer or a dt it cannot read."""
    if nir_for not in NIR_FOR:
        raise UserError(f"the nir target writes for one of {', '.join(NIR_FOR)}, got '{nir_for}'")
    if nir_for == "sinabs":
        return 1.0  # one timestep: Sinabs has no time unit
    if nir_for == "snntorch" and dt != SNNTORCH_DT:
        raise UserError(f"snnTorch 1.0.0's NIR importer hard-codes dt = {SNNTORCH_DT} s; got dt = {dt}")
    if not (np.isfinite(dt) and dt > 0):
        raise UserError(f"the nir target needs a positive time step dt, got {dt}")
    return float(dt)


def build_nir(frozen: FrozenNetwork, per_layer: FrozenNetwork | dict[str, float] | None = None,
              dt: float = DEFAULT_DT, nir_for: str = "spec"):
    """The NIR graph of a frozen network, and what was collapsed: (nir.NIRGraph, {layer: (schedule, threshold)}).

    ``per_layer``: the per-layer policy's network (export/thresholds.py ``calibrate_per_layer``) or a dict of
    thresholds, used where a layer's schedule must be collapsed; the schedule's mean otherwise.
    ``nir_for``: the consumer the LIF parameters are written for (:data:`NIR_FOR`, :func:`lif_parameters`).
    """
    nir = _nir()
    dt = _checked_dt(dt, nir_for)
    thresholds = _thresholds(frozen, per_layer)
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(frozen.input_shape))}
    edges: list[tuple[str, str]] = []
    shapes: dict[str, tuple[int, ...]] = {INPUT: tuple(int(d) for d in frozen.input_shape)}
    outlets: dict[str, str] = {INPUT: "input"}  # layer -> the node that carries its output
    collapsed: dict[str, dict[str, Any]] = {}
    for layer in frozen.layers:
        names = node_names(layer.name)
        source_shape = shapes[layer.sources[0]]
        weight = np.asarray(layer.weight, dtype=np.float64)
        bias = np.asarray(layer.bias, dtype=np.float64)
        imported = _imported_neuron(layer, nir_for)
        if imported:  # a CubaLIF's bias is its v_leak (Loihi adds it to v, not to the synaptic current)
            bias = np.zeros_like(bias) if layer.current_tau is not None else bias
        elif layer.spiking and 0.0 <= float(layer.tau) < 1.0:  # norse: r moves into the synapse
            scale = lif_parameters(float(layer.tau), dt, nir_for)[2]
            weight, bias = weight * scale, bias * scale
        edges += _synapse_nodes(nir, nodes, layer, weight, bias, source_shape, [outlets[s] for s in layer.sources])
        shape = _output_shape(layer)
        shapes[layer.name] = shape
        if not layer.spiking and layer is not frozen.layers[-1]:
            raise UserError(f"layer '{layer.name}': only the last layer may be the non-spiking readout")
        if imported:  # CubaLIF, IF, LI or I: an imported layer's neuron node, written back
            nodes[names["lif"]] = _imported_node(nir, layer, shape, dt, thresholds.get(layer.name))
            edges.append((names["synapse"], names["lif"]))
            outlets[layer.name] = names["lif"]
        if not layer.spiking:  # DS-ATGO's readout: the synapse itself is wired to the output
            nodes["output"] = nir.Output(output_type=np.array(shape))
            edges.append((outlets.get(layer.name, names["synapse"]), "output"))
        if imported or not layer.spiking:
            continue
        tau = float(layer.tau)
        if not 0.0 <= tau < 1.0:
            raise UserError(f"layer '{layer.name}': decay tau = {tau:.6g} has no NIR LIF time constant "
                            "(tau_mem = dt / (1 - tau) needs 0 <= tau < 1); the nir target cannot express it")
        tau_mem, r, _ = lif_parameters(tau, dt, nir_for)
        theta = thresholds[layer.name]
        schedule = np.asarray(layer.threshold_schedule, dtype=np.float64)
        metadata = {"dsatgo_decay": tau, "dsatgo_threshold_schedule": schedule}
        if np.ptp(schedule) != 0:
            collapsed[layer.name] = {"schedule": schedule.tolist(), "threshold": theta}
            metadata["collapsed"] = "per-timestep threshold schedule collapsed to one threshold"
        nodes[names["lif"]] = nir.LIF(tau=np.full(shape, tau_mem), r=np.full(shape, r),
                                      v_leak=np.zeros(shape), v_threshold=np.full(shape, theta),
                                      v_reset=np.zeros(shape), metadata=metadata)
        edges.append((names["synapse"], names["lif"]))
        outlets[layer.name] = names["lif"]
    if "output" not in nodes:  # no readout: the last layer's spikes are the output
        last = frozen.layers[-1].name
        nodes["output"] = nir.Output(output_type=np.array(shapes[last]))
        edges.append((outlets[last], "output"))
    metadata = {"producer": TOOL_NAME, "dt": float(dt), "timesteps": int(frozen.timesteps),
                "neuron_mapping": MAPPING, "readout": READOUT, **_consumer_metadata(frozen, dt, nir_for),
                "input": "x' = (x - mean) / std per channel, normalised by the host" if frozen.normalize
                else "x, fed unchanged at every timestep (direct encoding)",
                "threshold_collapse": ("per-timestep threshold schedules of " + ", ".join(collapsed)
                                       + " collapsed to one threshold per layer") if collapsed else "none"}
    if frozen.normalize:
        metadata["input_mean"] = np.asarray(frozen.normalize["mean"], dtype=np.float64)
        metadata["input_std"] = np.asarray(frozen.normalize["std"], dtype=np.float64)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata), collapsed


def _synapse_nodes(nir: Any, nodes: dict[str, Any], layer: FrozenLayer, weight: np.ndarray, bias: np.ndarray,
                   source_shape: tuple[int, ...], sources: list[str]) -> list[tuple[str, str]]:
    """Add a layer's synapse node (and a Flatten before a dense one that reads (C, H, W)) to ``nodes``; return the
    edges from its sources' nodes."""
    names = node_names(layer.name)
    weight, bias = weight.astype(SYNAPSE_DTYPE), bias.astype(SYNAPSE_DTYPE)
    if layer.conv is not None:
        geometry = layer.conv
        nodes[names["synapse"]] = nir.Conv2d(
            input_shape=tuple(int(d) for d in geometry.input_shape[1:]), weight=weight,
            stride=tuple(int(s) for s in geometry.stride), padding=tuple(int(p) for p in geometry.padding),
            dilation=(1, 1), groups=1, bias=bias)
        return [(s, names["synapse"]) for s in sources]
    nodes[names["synapse"]] = nir.Affine(weight=weight, bias=bias)
    if len(source_shape) <= 1:
        return [(s, names["synapse"]) for s in sources]
    nodes[names["flatten"]] = nir.Flatten(input_type={"input": np.array(source_shape)}, start_dim=0, end_dim=-1)
    return [(s, names["flatten"]) for s in sources] + [(names["flatten"], names["synapse"])]


def _imported_neuron(layer: FrozenLayer, nir_for: str) -> bool:
    """Whether the layer has what only imported layers have (export/nir_import.py): a synaptic current, no leak
    (IF), or a readout with a leak; written as NIR's CubaLIF, IF, LI or I (spec parameters only)."""
    special = (layer.current_tau is not None or (layer.spiking and float(layer.tau) == 1.0)
               or (not layer.spiking and layer.tau is not None))
    if special and nir_for not in ("spec", "snntorch"):
        raise UserError(f"layer '{layer.name}': a synaptic current, a non-leaky spiking neuron or a leaky readout "
                        f"is written for the NIR spec only, not for {nir_for}")
    return special


def _imported_node(nir: Any, layer: FrozenLayer, shape: tuple[int, ...], dt: float, theta: float | None) -> Any:
    """The NIR node of an imported layer's neuron (the inverse of export/nir_neurons.py, forward Euler with dt):
    U = tau U + I becomes tau_mem = dt / (1 - tau), r = tau_mem / dt (r = 1 / dt without leak); a synaptic
    current of decay alpha, tau_syn = dt / (1 - alpha), w_in = tau_syn / dt; a CubaLIF's bias b, v_leak = b tau_mem / dt."""
    decay = float(layer.tau)
    full = lambda value: np.broadcast_to(np.asarray(value, dtype=np.float64), shape).copy()  # noqa: E731
    if decay >= 1.0:
        if theta is None:
            return nir.I(r=full(1.0 / dt))
        return nir.IF(r=full(1.0 / dt), v_threshold=full(theta), v_reset=full(0.0))
    tau_mem = dt / (1.0 - decay)
    if theta is None:
        return nir.LI(tau=full(tau_mem), r=full(tau_mem / dt), v_leak=full(0.0))
    if layer.current_tau is None:
        return nir.LIF(tau=full(tau_mem), r=full(tau_mem / dt), v_leak=full(0.0), v_threshold=full(theta),
                       v_reset=full(0.0))
    tau_syn = dt / (1.0 - float(layer.current_tau))
    per_neuron = np.repeat(np.asarray(layer.bias, np.float64), int(np.prod(shape)) // len(layer.bias)).reshape(shape)
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt), v_leak=per_neuron * tau_mem / dt,
                       v_threshold=full(theta), v_reset=full(0.0), w_in=full(tau_syn / dt))


def _consumer_metadata(frozen: FrozenNetwork, dt: float, nir_for: str) -> dict[str, Any]:
    """What a reader needs beside the nodes: the time unit, T, the input encoding, and how to run the file."""
    seconds = nir_for != "sinabs"
    return {"nir_for": nir_for, "neuron_mapping": NIR_FOR_MAPPING.get(nir_for, MAPPING),
            "dt_unit": "s" if seconds else "timestep",
            "duration": float(frozen.timesteps * dt), "input_encoding": "direct",
            "integration": "forward Euler" if seconds else "exact (exponential decay per step)",
            "run": NIR_FOR_RUN[nir_for].format(dt=dt, T=int(frozen.timesteps))}


NIR_FOR_MAPPING = {
    "norse": "forward Euler, one NIR step of dt per DS-ATGO timestep: tau_mem = dt / (1 - tau), r = 1, the "
             "synapse's weight and bias scaled by 1 / (1 - tau), v_leak = 0, v_reset = 0, v_threshold = theta",
    "sinabs": "exact integration, dt = 1 timestep: tau = -1 / ln(tau_dsatgo) timesteps (exp(-1 / tau) = "
              "tau_dsatgo), r = 1 / (1 - tau_dsatgo), v_leak = 0, v_reset = 0, v_threshold = theta",
}
NIR_FOR_RUN = {
    "spec": "present the input node's value at each of T = {T} steps of dt = {dt} s; read 'output' at each step",
    "snntorch": "snntorch.import_nir.import_from_nir(graph); call it T = {T} times, one sample at a time "
                "(its Flatten(start_dim=0) also flattens a batch)",
    "norse": "norse.torch.from_nir(graph, dt={dt}); call it T = {T} times carrying its state "
             "(Norse ignores the file's dt and r)",
    "sinabs": "sinabs.from_nir(graph, batch_size=B); set spike_fn=SingleSpike and reset_fn=MembraneReset() "
              "on every LIF layer; feed (B * T, ...) with T = {T}",
}


def write_nir(frozen: FrozenNetwork, path: str | os.PathLike,
              per_layer: FrozenNetwork | dict[str, float] | None = None, dt: float = DEFAULT_DT,
              nir_for: str = "spec") -> dict[str, Any]:
    """Write the NIR file (HDF5, nir.write); returns its description for the manifest."""
    nir = _nir()
    graph, collapsed = build_nir(frozen, per_layer, dt, nir_for)
    nir.write(str(path), graph)
    return {"nodes": len(graph.nodes), "edges": len(graph.edges), "dt": float(graph.metadata["dt"]),
            "timesteps": int(frozen.timesteps), "neuron_mapping": graph.metadata["neuron_mapping"],
            "readout": READOUT, "input": graph.metadata["input"], "collapsed_thresholds": collapsed, "nir_for": nir_for,
            "run": graph.metadata["run"]}
