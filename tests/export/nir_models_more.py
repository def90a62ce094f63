"""Small spiking networks built in Sinabs 3.1.3, written to NIR by its own exporter (sinabs.to_nir), and run by
Sinabs itself with spikes recorded per NIR neuron node key: the material tests/export/test_nir_import_more.py
checks our NIR import against (as tests/export/nir_models.py does for snnTorch and Norse)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from dsatgo_deploy.runs import RunRecord

from .nir_models import BETA_HIDDEN, HIDDEN, HIDDEN_THRESHOLDS

SINABS_DT = 1.0  # sinabs.to_nir writes tau in timesteps and r = 1: one Euler step per timestep
#: the LIF's tau in timesteps; Sinabs decays by exp(-1 / tau) = 0.861, the spec's Euler by 1 - 1 / tau = 0.85
SINABS_TAU = 1 / (1 - BETA_HIDDEN)


def _spec_like(kind: str, size: int, steps: int, threshold):
    """A Sinabs neuron layer in the form the spec's file describes: one spike per step (SingleSpike, Sinabs'
    default MultiSpike fires floor(v / theta) spikes) and reset to zero (MembraneReset, the default subtracts),
    no floor on v; (B * T, N) input (the Squeeze form, which to_nir and Linear layers take). The LIF normalises
    its input by 1 - exp(-1 / tau) (norm_input, Sinabs' default), nearest to the spec's dt / tau."""
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    common = dict(spike_threshold=torch.as_tensor(threshold, dtype=torch.float32).expand(size).clone(),
                  spike_fn=SingleSpike, reset_fn=MembraneReset(), num_timesteps=steps)
    if kind == "iaf":
        return sl.IAFSqueeze(**common)
    # per-neuron tau: nir 1.0.8 cannot write the scalar that Sinabs stores by default
    layer = sl.LIFSqueeze(tau_mem=torch.full((size,), SINABS_TAU), norm_input=True, **common)
    layer.tau_mem.requires_grad_(False)  # a Parameter in Sinabs; trained, it would differ per neuron (Loihi: one)
    return layer


class SinabsMLP(torch.nn.Sequential):
    """64 -> 48 (thresholds 0.75 to 1.25 per neuron) -> 10, IAF or LIF neurons; input (B * T, 64), T steps per
    sample. Node keys as to_nir names them: "1" and "3"."""

    keys = ("1", "3")

    def __init__(self, kind: str, steps: int) -> None:
        super().__init__(torch.nn.Linear(64, HIDDEN), _spec_like(kind, HIDDEN, steps, HIDDEN_THRESHOLDS),
                         torch.nn.Linear(HIDDEN, 10), _spec_like(kind, 10, steps, 1.0))
        self.steps = steps


def _repeat(x: np.ndarray, steps: int) -> torch.Tensor:
    """(B, 64) -> (B * T, 64): the same input at every step, sample-major as Sinabs' Squeeze layers unflatten."""
    return torch.from_numpy(np.asarray(x, np.float32)).repeat_interleave(steps, dim=0)


def _reset(model: torch.nn.Module) -> None:
    for layer in model:
        if hasattr(layer, "reset_states"):
            layer.reset_states()


def _hidden_and_output(model: SinabsMLP, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    hidden = model[1](model[0](x))
    return hidden, model[3](model[2](hidden))


@torch.no_grad()
def run_sinabs(model: SinabsMLP, x: np.ndarray) -> RunRecord:
    """Sinabs' own run (states reset first); spikes (B, T, N) per NIR node key; the class: the output layer's
    spike count argmax (ties: the lowest index, as our reference's rule)."""
    _reset(model)
    hidden, output = _hidden_and_output(model, _repeat(x, model.steps))
    spikes = {key: s.reshape(len(x), model.steps, -1).numpy().astype(bool)
              for key, s in zip(model.keys, (hidden, output))}
    return RunRecord("sinabs", spikes, spikes[model.keys[-1]].sum(axis=1).argmax(axis=1))


def train_sinabs_mlp(kind: str, x: np.ndarray, y: np.ndarray, steps: int, epochs: int = 4,
                     seed: int = 0) -> SinabsMLP:
    """A few seconds of BPTT on spike counts with Sinabs' own surrogate gradient (SingleExponential)."""
    torch.manual_seed(seed)
    model = SinabsMLP(kind, steps)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    labels = torch.from_numpy(np.asarray(y, np.int64))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(128):
            _reset(model)
            _, output = _hidden_and_output(model, _repeat(x[batch.numpy()], steps))
            counts = output.reshape(len(batch), steps, -1).sum(dim=1)
            loss = torch.nn.functional.cross_entropy(counts, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    _reset(model)
    return model


def write_sinabs(model: SinabsMLP, sample: np.ndarray, path: Path) -> Path:
    """sinabs.to_nir on one sample's T steps (nirtorch drops the leading dimension), then nir.write."""
    import nir
    import sinabs

    _reset(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = sinabs.to_nir(model, _repeat(sample[:1], model.steps))
    _reset(model)
    nir.write(str(path), graph)
    return path


ROCKPOOL_DT = 1e-3  # LIFTorch's default dt; rockpool's to_nir writes no dt
ROCKPOOL_KEYS = ("1_LIFTorch", "3_LIFTorch")


def rockpool_mlp(seed: int = 0):
    """Rockpool 3.1.0: LinearTorch 64 -> 48 -> 10 (no bias), LIFTorch (tau_mem 20 ms, tau_syn 4 ms, one spike
    per step: max_spikes_per_dt = 1; Rockpool's reset always subtracts), untrained with the readout's weights
    doubled so that both layers fire. to_nir writes each LIFTorch as a CubaLIF with w_in = 1 and
    r = tau_mem exp(-dt / tau_mem) / dt."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch

    torch.manual_seed(seed)
    lif = dict(tau_mem=0.02, tau_syn=0.004, dt=ROCKPOOL_DT, max_spikes_per_dt=1)
    model = Sequential(LinearTorch((64, HIDDEN), has_bias=False), LIFTorch(HIDDEN, **lif),
                       LinearTorch((HIDDEN, 10), has_bias=False), LIFTorch(10, **lif))
    with torch.no_grad():
        model[2].weight.mul_(2.0)
    return model


@torch.no_grad()
def run_rockpool(model, x: np.ndarray, steps: int) -> RunRecord:
    """Rockpool's own run (state reset first), input (B, T, 64); spikes per NIR node key; the class: the output
    layer's spike count argmax."""
    model.reset_state()
    inputs = torch.from_numpy(np.asarray(x, np.float32))[:, None, :].expand(-1, steps, -1).contiguous()
    output, _, record = model(inputs, record=True)
    spikes = {ROCKPOOL_KEYS[0]: record[f"{ROCKPOOL_KEYS[0]}_output"].numpy().astype(bool),
              ROCKPOOL_KEYS[1]: output.numpy().astype(bool)}
    model.reset_state()
    return RunRecord("rockpool", spikes, spikes[ROCKPOOL_KEYS[1]].sum(axis=1).argmax(axis=1))


def write_rockpool(model, path: Path) -> Path:
    import nir
    from rockpool.nn.modules.torch.nir import to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = to_nir(model, torch.zeros(1, 64))
    nir.write(str(path), graph)
    return path


SPIKINGJELLY_DT = 1e-4  # export_to_nir's default: it writes tau * dt and, for an IF, r = 1 / dt
SPIKINGJELLY_KEYS = ("_1", "_3")


def spikingjelly_mlp(seed: int = 0) -> torch.nn.Module:
    """SpikingJelly 2.0.0 (single-step mode): Linear 64 -> 48 LIFNode (tau 1 / 0.15) -> 10 LIFNode (tau 10);
    hard reset to 0 and input decayed by 1 / tau (its defaults, the spec's Euler step with the file's dt);
    untrained, the weights scaled so that both layers fire."""
    from spikingjelly.activation_based import layer, neuron

    torch.manual_seed(seed)
    model = torch.nn.Sequential(layer.Linear(64, HIDDEN), neuron.LIFNode(tau=1 / (1 - BETA_HIDDEN)),
                                layer.Linear(HIDDEN, 10), neuron.LIFNode(tau=10.0))
    with torch.no_grad():
        model[0].weight.mul_(8.0)
        model[2].weight.mul_(30.0)
    return model


@torch.no_grad()
def run_spikingjelly(model: torch.nn.Module, x: np.ndarray, steps: int) -> RunRecord:
    """SpikingJelly's own run, one step at a time (state reset first); spikes per NIR node key."""
    from spikingjelly.activation_based import functional

    functional.reset_net(model)
    inputs = torch.from_numpy(np.asarray(x, np.float32))
    trains: dict[str, list[np.ndarray]] = {key: [] for key in SPIKINGJELLY_KEYS}
    for _ in range(steps):
        hidden = model[1](model[0](inputs))
        output = model[3](model[2](hidden))
        trains[SPIKINGJELLY_KEYS[0]].append(hidden.numpy())
        trains[SPIKINGJELLY_KEYS[1]].append(output.numpy())
    functional.reset_net(model)
    spikes = {key: np.stack(train, axis=1).astype(bool) for key, train in trains.items()}
    return RunRecord("spikingjelly", spikes, spikes[SPIKINGJELLY_KEYS[1]].sum(axis=1).argmax(axis=1))


def write_spikingjelly(model: torch.nn.Module, path: Path) -> Path:
    import nir
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_to_nir(model, torch.zeros(1, 64), dt=SPIKINGJELLY_DT)
    nir.write(str(path), graph)
    return path
