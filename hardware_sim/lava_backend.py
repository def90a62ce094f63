"""Run a deployable network as Lava processes (Loihi2SimCfg, fixed_pt by default, or floating_pt).

The graph is built once and compiled once for all samples. Every layer L is one
neuron population fed by one synapse process per source, all with L's weights;
L's InPort sums them (int32, ``PyInPortVectorDense.recv``), which is the
reference's ``wrap32(sum over sources of syn(W, m_src))``::

    RingBuffer (graded payloads) -------------> synapse(L, "input") --> neurons of L
    neurons of S1 --[relay x k1]--------------> synapse(L, S1) ---\
    neurons of S2 --[relay x k2]--------------> synapse(L, S2) ----+--> neurons of L --> SpikeRecorder
    ...                                                            /    (readout: LIFReset + Monitor of v)

* Synapses: a dense layer gets a ``Dense`` (its weights, weight exponent,
  ``num_weight_bits``, ``num_message_bits``: graded for the layer reading a graded
  input); a conv layer a ``Conv`` built as netx builds it (hdf5.py
  ``create_conv``). Neurons: our ScheduledLIF (threshold per sample timestep)
  or, for the non-spiking readout, a stock LIFReset whose threshold (2**17) it
  can never reach. A network whose last layer spikes has no readout and no Monitor.
  Sigma-delta kinds: Lava's own sdn models (Delta, SigmaDelta, Sigma) with a
  per-sample reset (lava_procs/reset_sdn.py); their graded messages are recorded
  with their values, a sigma readout's sigma by the Monitor. An identity layer
  has no synapse: its source's port is connected to its neurons' a_in. Bias
  input: the layer reading the input is a BiasInputLIF (lava_procs/bias_input_lif.py)
  holding every sample's bias mantissas; nothing reaches its a_in and it, not the
  RingBuffer, drives the graph (fixed_pt only).
* Layouts. Lava's conv processes are (X, Y, C) = (W, H, C); the format is torch's
  (C, H, W). A node (the input or a layer) whose shape is 3-D, (C, H, W), lives
  in Lava as (W, H, C); every other node as a flat (n,) vector. So:
  conv weights ``W_lava = W_torch[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)``
  (out, kx, ky, in), spatially flipped because Lava convolves where torch
  correlates; stride, padding, dilation and input shape reversed to x-first;
  bias per channel broadcast over (X, Y, C). A dense layer reading a 3-D node
  reads it through ``transpose([2, 1, 0]).flatten()`` virtual ports (netx's
  flatten), i.e. in torch's (C, H, W) order, so its weights are unchanged.
  The input RingBuffer holds the payloads in the input node's layout; spike
  recordings and the readout monitor are turned back to (C, H, W) flatten order
  on the way out.
* Latency. A synapse adds one step, a neuron none. With
  ``depth(input) = 0`` and ``depth(L) = 1 + max(depth(S) for S in L.sources)``
  (:meth:`DeployableNetwork.depths`), L runs sample i's timestep t (1-based) at wall step
  ``i*T + t + depth(L)``. A source S of L at a smaller depth is delayed by
  ``depth(L) - 1 - depth(S)`` steps so that every source's message of sample
  timestep t reaches L at the same wall step: a chain of relays (each a Sparse
  identity synapse into memoryless threshold-0 LIF neurons, :func:`_relay`,
  which repeat their 0/1 input one step later), one chain per source, shared by
  every consumer (the consumer needing k steps taps the k-th link). Relays are
  stock Loihi populations, not layers, and never appear in the results.
* Delays and recurrence (format version 3). A layer with synaptic delays gets a
  DelayDense (its delays, weights, exponent, bits) instead of a Dense: d more
  steps on the wire, which the format's sample time already states, so depths
  and realignment are unchanged. A recurrent layer gets a Dense (``weight_rec``,
  the layer's exponent and bits) from its neurons back to their own InPort.
  Their buffers outlive a neuron reset, so such a network runs one graph per
  sample, each from rest (the timeout applies to each).
* Input. A RingBuffer sends each sample's payloads (graded) or 0/1 spikes: the same
  every step of the sample for static samples, one row per step for
  time-varying ones (B, T, *input_shape).
* Streaming. Samples run back to back, T steps each, with no gap; layer L's reset
  offset is ``1 + depth(L)`` (mod T), which zeroes u and v exactly when a new
  sample reaches it, at any depth. ``max depth`` extra steps flush the last
  sample: ``samples*T + max depth`` steps in all.
* Results. Spikes of every spiking layer go to a SpikeRecorder (lava_procs), which
  writes them into a memory-mapped file in a temporary folder (Lava's RingBuffer
  sink hands its buffer back one element per message, ~30 us each, which
  dominated conv runs); the readout's v is recorded by a Monitor (small: n_out).
  Both are realigned from wall time to sample time:
  sample i, timestep t (0-based) of layer L is wall index ``i*T + t + depth(L)``
  (0-based), so the readout's output is read at ``i*T + T - 1 + depth``.

floating_pt (``select_tag="floating_pt"``): the same graph with Lava's float
models, the integers mapped so that the float run approximates the fixed-point
one. Fixed point works in units of 1/64 of u and v (``a << 6``, ``vth << 6``):
with U = u/64, V = v/64 it computes

    U(t) = U(t-1) (4095 - du)/4096 + a(t)
    V(t) = V(t-1) (4096 - dv)/4096 + U(t) + bias_mant 2**bias_exp / 64 ;  spike V > vth

up to rounding (decays toward zero, the floor of a negative weight exponent) and
the 24-bit wrap of u and of conv sums and the saturation of v. Lava's float LIF
computes ``u = u (1 - du) + a; v = v (1 - dv) + u + bias_mant; spike v > vth``
(bias_exp ignored) and float Dense ``a = W s`` (no exponent), so
:func:`float_parameters` gives

    du_f = (du + 1)/4096,  dv_f = dv/4096,  bias_f = bias_mant 2**bias_exp / 64,  vth_f = vth
    Dense W_f = W 2**weight_exp,  Conv W_f = W,  graded payloads and spikes as they are

The readout never fires (vth = inf; float v does not saturate), its v is
reported times 64 (fixed-point units, float). Relays become float LIFs with
du = dv = 1, vth = 0 (they repeat their input a step later, as in fixed point).
The SpikeRecorder's one model serves both (``exception_proc_model_map``).

``run()`` is always followed by ``stop()``. A failure inside a Lava process is
raised as LavaRunError with the real exception Lava keeps in its actors, as
soon as it happens (Lava's own error path joins every actor and so hangs while
the healthy ones wait for messages); a run that does not finish within
``timeout_s`` (or the limit :func:`run_timeout` sets) is ended the same way, its
actor processes terminated, and raises LavaTimeout (a UserError: one line).

Children (hardware_sim/lava_guard.py). Lava forks one actor process per Lava
process and a shared-memory manager. Forked during a run, each ignores SIGINT
(Ctrl-C reaches the whole process group; the parent alone ends the run and
terminates them, with no traceback from each child) and watches its parent:
when the parent dies, even by SIGKILL, the child removes the run's temporary
folder and exits. A run interrupted in the parent (KeyboardInterrupt) or failed
terminates every child it started before the exception propagates.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import types
import warnings
from pathlib import Path

import numpy as np

from dsatgo_deploy import lava_compat, loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import DeployableNetwork
from dsatgo_deploy.runs import RunRecord

# float_parameters: also this module's API (the lava-float side's mapping)
from .lava_graph import _build, _Graph, _lava_to_torch, float_parameters  # noqa: F401
from .lava_guard import end_children, guarded_children

CHUNK_STEPS = 500  # run() calls of this many steps, so a progress bar can move
POLL_S = 0.2  # how often a running Lava graph is checked for failed processes


class LavaRunError(RuntimeError):
    """A Lava run failed or hung; the message carries the real cause."""


class LavaTimeout(LavaRunError, UserError):
    """A Lava run took longer than its limit (the user's --timeout): one line, exit 2."""


_default_timeout_s: list[float] = []  # innermost run_timeout() last


@contextlib.contextmanager
def run_timeout(seconds: float):
    """Every :func:`run_lava` inside without its own ``timeout_s`` ends after ``seconds`` (the CLI's --timeout)."""
    if not seconds > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {seconds}")
    _default_timeout_s.append(float(seconds))
    try:
        yield
    finally:
        _default_timeout_s.pop()


SELECT_TAGS = ("fixed_pt", "floating_pt")


def _import_lava() -> types.SimpleNamespace:
    lava_compat.install()
    try:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import DelayDense, Dense
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIF, LIFReset
        from lava.proc.monitor.process import Monitor
        from lava.proc.sparse.process import Sparse

        from .lava_procs.bias_input_lif import BiasInputLIF, PyBiasInputLifModelBitAcc
        from .lava_procs.reset_sdn import ResetDelta, ResetSigma, ResetSigmaDelta
        from .lava_procs.scheduled_lif import ScheduledLIF
        from .lava_procs.spike_recorder import PySpikeRecorderModel, SpikeRecorder
    except ImportError as exc:
        raise UserError(f"Lava is not installed or does not import ({exc}); install lava-nc 0.10.0 and "
                        "lava-dl 0.6.0 as the Makefile does (pip --no-deps --ignore-requires-python)") from None
    return types.SimpleNamespace(RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Conv=Conv, Dense=Dense,
                                 DelayDense=DelayDense,
                                 Source=Source, LIF=LIF, LIFReset=LIFReset, Monitor=Monitor, Sparse=Sparse,
                                 ScheduledLIF=ScheduledLIF, SpikeRecorder=SpikeRecorder, ResetDelta=ResetDelta,
                                 ResetSigma=ResetSigma, ResetSigmaDelta=ResetSigmaDelta, BiasInputLIF=BiasInputLIF,
                                 PyBiasInputLifModelBitAcc=PyBiasInputLifModelBitAcc,
                                 PySpikeRecorderModel=PySpikeRecorderModel)


def _actors(process) -> list:
    try:
        return list(process._runtime._messaging_infrastructure.actors)
    except AttributeError:  # not compiled or started yet
        return []


def _actor_errors(process) -> list[str]:
    """Exceptions Lava's actor processes caught. Lava itself only says 'see output above'
    (and, with several actors, hangs while joining the healthy ones)."""
    errors = []
    for actor in _actors(process):
        try:
            caught = actor.exception
        except (OSError, EOFError, ValueError):  # pipe closed by a concurrent join
            caught = getattr(actor, "_exception", None)
        if caught:
            exc, trace = caught
            where = [line.strip() for line in str(trace).strip().splitlines() if line.strip().startswith("File ")]
            errors.append(f"{type(exc).__name__}: {exc}" + (f" ({where[-1]})" if where else ""))
    return errors


def _stop(process, timeout_s: float = 30.0) -> None:
    """stop() in a daemon thread, waiting at most timeout_s: Lava's stop() can hang after a failure."""
    def stop() -> None:
        with contextlib.suppress(Exception):  # a run ended before Lava's runtime was up has nothing to stop
            process.stop()

    thread = threading.Thread(target=stop, daemon=True)
    thread.start()
    thread.join(timeout_s)


def _shutdown(process, timeout_s: float = 3.0, grace_s: float = 1.0) -> None:
    """End a failed, hung or interrupted run now: terminate Lava's actor processes, mark the runtime
    stopped (its stop() would otherwise wait for replies from the dead actors, here and again in its
    ``__del__`` at exit), then stop() in a daemon thread, which shuts the shared-memory manager down
    (it unlinks the run's shared memory)."""
    end_children(_actors(process), grace_s)
    runtime = getattr(process, "_runtime", None)
    if runtime is not None:
        runtime._is_started = False
        with contextlib.suppress(Exception):  # not started yet, or already shut down
            runtime._messaging_infrastructure.smm.shutdown()
    _stop(process, timeout_s)


def _execute(graph: _Graph, lava, select_tag: str, progress: bool, timeout_s: float | None,
             what: str) -> np.ndarray | None:
    """Run the graph for all its steps, watching for failed processes and the timeout; always stop it.
    Returns the readout's monitored v, (total, *Lava shape); None without a readout."""
    entry = graph.entry
    # The SpikeRecorder has one model (tagged fixed_pt); it records float spikes as well.
    config = lava.Loihi2SimCfg(select_tag=select_tag,
                               exception_proc_model_map={lava.SpikeRecorder: lava.PySpikeRecorderModel,
                                                         lava.BiasInputLIF: lava.PyBiasInputLifModelBitAcc})
    failure: list[BaseException] = []

    def execute() -> None:
        try:
            done = 0
            from tqdm import tqdm

            with tqdm(total=graph.total_steps, desc="lava", unit="step", disable=None if progress else True,
                      leave=False) as bar:
                while done < graph.total_steps:
                    chunk = min(CHUNK_STEPS, graph.total_steps - done)
                    entry.run(condition=lava.RunSteps(num_steps=chunk), run_cfg=config)
                    done += chunk
                    bar.update(chunk)
        except BaseException as exc:  # surfaced in the caller's thread
            failure.append(exc)

    with warnings.catch_warnings():
        # Lava's process-model search executes sibling files; their relative imports warn harmlessly.
        warnings.filterwarnings("ignore", message="Cannot import module")
        worker = threading.Thread(target=execute, daemon=True)
        worker.start()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while worker.is_alive():
            try:
                worker.join(POLL_S)
            except KeyboardInterrupt:
                _shutdown(entry, timeout_s=0.5, grace_s=0.2)  # Ctrl-C: the user waits; nothing to save
                raise
            errors = _actor_errors(entry)
            if errors:
                _shutdown(entry)
                raise LavaRunError("a Lava process failed: " + "; ".join(errors))
            if deadline is not None and time.monotonic() > deadline:
                _shutdown(entry)
                raise LavaTimeout(f"Lava run did not finish within {timeout_s} s ({what}); its processes were "
                                   "terminated")
        if failure:
            cause = "; ".join(_actor_errors(entry)) or repr(failure[0])
            _shutdown(entry)
            raise LavaRunError(f"Lava run failed: {cause}") from failure[0]
        try:
            if graph.monitor is None:
                return None
            return np.asarray(graph.monitor.get_data()[graph.readout_name][graph.readout_var])
        finally:
            _stop(entry)


def run_lava(
    net: DeployableNetwork,
    x: np.ndarray,
    select_tag: str = "fixed_pt",
    payloads: bool = False,
    progress: bool = False,
    timeout_s: float | None = None,
) -> RunRecord:
    """Run ``net`` on samples x in Lava; same result type as the reference simulator.

    Spikes per spiking layer (B, T, n) and the readout v after each sample
    timestep (B, T, n_out; None without a readout), neurons in the format's
    (C, H, W) flatten order, realigned from wall time to sample time (module
    doc). Samples are static (B, *input_shape) or time-varying
    (B, T, *input_shape); analog (encoded with the network's input encoding) or,
    with ``payloads``, the integer payloads (spikes: 0/1) themselves.
    ``select_tag="floating_pt"`` runs Lava's float models with the mapping of the
    module doc (an approximation; its readout trace is float, in fixed-point units).
    """
    if select_tag not in SELECT_TAGS:
        raise UserError(f"select_tag {select_tag!r} is not supported for deployable networks "
                        f"(use one of {', '.join(SELECT_TAGS)})")
    lava = _import_lava()
    encoded = net.encode_input(np.asarray(x), payloads=payloads)
    samples, steps = len(encoded), net.timesteps
    if samples == 0:
        raise UserError("no samples to run")
    floating = select_tag == "floating_pt"
    if floating and net.input_encoding.kind == "bias":
        raise UserError("bias input runs on Lava's fixed_pt models only (select_tag fixed_pt)")
    if net.input_encoding.kind == "bias" and encoded.ndim != 2:
        raise UserError("bias input sets the input neurons' bias once per sample: samples must be static")
    if timeout_s is None and _default_timeout_s:
        timeout_s = _default_timeout_s[-1]
    # Delay buffers and recurrent spikes would carry one sample's spikes into the next: such networks run
    # one graph per sample, each from rest.
    isolated = any(layer.delay is not None or layer.weight_rec is not None for layer in net.layers)
    parts = [encoded[i:i + 1] for i in range(samples)] if isolated else [encoded]
    runs = [_run_graph(net, part, lava, select_tag, progress, timeout_s) for part in parts]
    spikes = {name: np.concatenate([run[0][name] for run in runs]) for name in runs[0][0]}
    engine = "lava-float" if floating else "lava"
    readout = None if runs[0][1] is None else np.concatenate([run[1] for run in runs])
    run = RunRecord.from_readout(engine, spikes, readout)
    run.messages = {name: values.astype(np.int64) for name, values in spikes.items() if values.dtype != bool}
    return run


def _run_graph(net: DeployableNetwork, encoded: np.ndarray, lava, select_tag: str, progress: bool,
               timeout_s: float | None) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """One Lava graph for these samples, streamed back to back (module doc): spikes per spiking layer
    (B, T, n) and the readout trace (B, T, n_out) or None, in sample time."""
    samples, steps = len(encoded), net.timesteps
    floating = select_tag == "floating_pt"
    with tempfile.TemporaryDirectory(prefix="dsatgo-lava-") as workdir, guarded_children(workdir):
        graph = _build(net, encoded, lava, Path(workdir), floating)
        monitored = _execute(graph, lava, select_tag, progress, timeout_s, f"{samples} samples x {steps} steps")
        # Wall index (0-based) of sample i's timestep t at a node of depth d: i*T + t + d.
        index = np.arange(samples)[:, None] * steps + np.arange(steps)[None, :]  # (B, T)
        spikes = {}
        for name, path in graph.recordings.items():
            wall = _lava_to_torch(np.load(path), graph.shapes[name])  # (total, n), torch order
            spikes[name] = wall[index + graph.depths[name]]  # (B, T, n); graded layers: int32 messages
    if monitored is None:
        return spikes, None
    readout = net.layers[-1]
    wall_v = _lava_to_torch(monitored, readout.output_shape)
    wall_v = wall_v * float(1 << loihi.ACTIVATION_SHIFT) if floating else wall_v.astype(np.int64)
    return spikes, wall_v[index + graph.depths[readout.name]]  # (B, T, n_out)
