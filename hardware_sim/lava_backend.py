"""Run a deployable network as Lava processes (Loihi2SimCfg, fixed_pt by default).

The graph, built once and compiled once for all samples::

    RingBuffer (graded payloads) -> Dense -> ScheduledLIF -> Dense -> ... -> Dense -> LIFReset (readout)

* Each layer's Dense gets the layer's integer weights, weight exponent and
  ``num_message_bits`` (graded for the first layer); its neurons are our
  ScheduledLIF (threshold per sample timestep) or, for the non-spiking readout,
  a stock LIFReset whose threshold (2**17) it can never reach.
* Samples stream back to back, T steps each, with no gap: every Dense adds one
  step of latency, so layer k (1-based) sees sample i's timestep t at wall step
  i*T + t + k; its reset offset is 1 + k, which zeroes u and v exactly when a
  new sample reaches it, at any depth. L extra steps flush the last sample.
* Spikes of every spiking layer go to sink RingBuffers; the readout's v is
  recorded by a Monitor and read at each sample's last timestep.

``run()`` is always followed by ``stop()``. A failure inside a Lava process is
raised as LavaRunError with the real exception Lava keeps in its actors, as
soon as it happens (Lava's own error path joins every actor and so hangs while
the healthy ones wait for messages); a run that does not finish within
``timeout_s`` is ended the same way, its actor processes terminated.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np

from dsatgo_deploy import lava_compat, loihi
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.network import INPUT, DeployableNetwork

from .reference import SimulationResult

CHUNK_STEPS = 500  # run() calls of this many steps, so a progress bar can move
POLL_S = 0.2  # how often a running Lava graph is checked for failed processes


class LavaRunError(RuntimeError):
    """A Lava run failed or hung; the message carries the real cause."""


@dataclass
class _Graph:
    source: object
    neurons: list  # one per layer, in order
    sinks: dict  # layer name -> sink RingBuffer
    monitor: object
    total_steps: int


def _import_lava():
    lava_compat.install()
    try:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIFReset
        from lava.proc.monitor.process import Monitor

        from .lava_procs.scheduled_lif import ScheduledLIF
    except ImportError as exc:
        raise UserError(f"Lava is not installed or does not import ({exc}); install lava-nc 0.10.0 and "
                        "lava-dl 0.6.0 as the Makefile does (pip --no-deps --ignore-requires-python)") from None
    return RunSteps, Loihi2SimCfg, Dense, Sink, Source, LIFReset, Monitor, ScheduledLIF


def _build(net: DeployableNetwork, payloads: np.ndarray, lava) -> _Graph:
    RunSteps, Loihi2SimCfg, Dense, Sink, Source, LIFReset, Monitor, ScheduledLIF = lava
    steps = net.timesteps
    depth = len(net.layers)
    samples = len(payloads)
    total = samples * steps + depth
    # Direct encoding: each sample's payload repeated T times, then zeros to flush the pipeline.
    data = np.zeros((net.input_size, total), dtype=np.int32)
    data[:, : samples * steps] = np.repeat(payloads.T.astype(np.int32), steps, axis=1)
    source = Source(data=data)
    outputs = {INPUT: source.s_out}
    neurons, sinks = [], {}
    monitor = None
    for k, layer in enumerate(net.layers, start=1):
        dense = Dense(weights=layer.weight.astype(np.int32), weight_exp=layer.weight_exp,
                      num_weight_bits=loihi.WEIGHT_BITS, num_message_bits=layer.input_message_bits,
                      name=f"{layer.name}_dense")
        outputs[layer.sources[0]].connect(dense.s_in)
        common = dict(shape=(layer.num_neurons,), du=layer.current_decay, dv=layer.voltage_decay,
                      bias_mant=layer.bias_mant.astype(np.int32), bias_exp=layer.bias_exp,
                      reset_offset=(1 + k) % steps, name=f"{layer.name}_neurons")
        if layer.spiking:
            schedule = np.array([layer.threshold_at(t) for t in range(steps)], dtype=np.int32)
            neuron = ScheduledLIF(vth_schedule=schedule, **common)
            sink = Sink(shape=(layer.num_neurons,), buffer=total)
            neuron.s_out.connect(sink.a_in)
            sinks[layer.name] = sink
        else:
            neuron = LIFReset(vth=loihi.NEVER_FIRES_VTH, reset_interval=steps, **common)
            monitor = Monitor()
            monitor.probe(neuron.v, total)
        dense.a_out.connect(neuron.a_in)
        outputs[layer.name] = neuron.s_out
        neurons.append(neuron)
    return _Graph(source, neurons, sinks, monitor, total)


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
    thread = threading.Thread(target=process.stop, daemon=True)
    thread.start()
    thread.join(timeout_s)


def _shutdown(process, timeout_s: float = 3.0) -> None:
    """End a failed or hung run: terminate Lava's actor processes, then stop() in a daemon
    thread (after a failure Lava's own stop() can hang)."""
    for actor in _actors(process):
        try:
            if actor.is_alive():
                actor.terminate()
        except (ValueError, AssertionError, AttributeError):  # already closed
            pass
    _stop(process, timeout_s)


def run_lava(
    net: DeployableNetwork,
    x: np.ndarray,
    select_tag: str = "fixed_pt",
    payloads: bool = False,
    progress: bool = False,
    timeout_s: float | None = None,
) -> SimulationResult:
    """Run ``net`` on samples x in Lava; same result type as the reference simulator.

    Spikes per layer (B, T, n) and the readout v after each sample timestep
    (B, T, n_out), realigned from wall time to sample time.
    """
    if select_tag != "fixed_pt":
        raise UserError(f"select_tag {select_tag!r} is not supported for deployable networks yet (use fixed_pt)")
    lava = _import_lava()
    RunSteps, Loihi2SimCfg = lava[0], lava[1]
    if payloads:
        encoded = np.asarray(x, dtype=np.int64).reshape(len(x), -1)
    else:
        encoded = net.input_encoding.encode(np.asarray(x).reshape(len(x), -1))
    samples, steps, depth = len(encoded), net.timesteps, len(net.layers)
    if samples == 0:
        raise UserError("no samples to run")
    graph = _build(net, encoded, lava)
    entry = graph.neurons[0]
    config = Loihi2SimCfg(select_tag=select_tag)
    failure: list[BaseException] = []

    def execute() -> None:
        try:
            done = 0
            from tqdm import tqdm

            with tqdm(total=graph.total_steps, desc="lava", unit="step", disable=None if progress else True,
                      leave=False) as bar:
                while done < graph.total_steps:
                    chunk = min(CHUNK_STEPS, graph.total_steps - done)
                    entry.run(condition=RunSteps(num_steps=chunk), run_cfg=config)
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
            worker.join(POLL_S)
            errors = _actor_errors(entry)
            if errors:
                _shutdown(entry)
                raise LavaRunError("a Lava process failed: " + "; ".join(errors))
            if deadline is not None and time.monotonic() > deadline:
                _shutdown(entry)
                raise LavaRunError(f"Lava run did not finish within {timeout_s} s ({samples} samples x {steps} "
                                   "steps); its processes were terminated")
        if failure:
            cause = "; ".join(_actor_errors(entry)) or repr(failure[0])
            _shutdown(entry)
            raise LavaRunError(f"Lava run failed: {cause}") from failure[0]
        try:
            spikes_wall = {name: sink.data.get().astype(bool) for name, sink in graph.sinks.items()}
            readout_layer = net.layers[-1]
            monitored = graph.monitor.get_data()[f"{readout_layer.name}_neurons"]["v"]
        finally:
            _stop(entry)
    spikes = {}
    index = np.arange(samples)[:, None] * steps + np.arange(steps)[None, :]  # (B, T) sample-time steps, 0-based
    for k, layer in enumerate(net.layers, start=1):
        if layer.spiking:
            wall = spikes_wall[layer.name]  # (n, total)
            spikes[layer.name] = wall[:, index + k].transpose(1, 2, 0)
    readout_trace = np.asarray(monitored)[index + depth].astype(np.int64)  # (B, T, n_out)
    return SimulationResult(spikes=spikes, readout_trace=readout_trace)
