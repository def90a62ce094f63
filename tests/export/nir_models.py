"""Small spiking networks built in snnTorch 1.0.0 and Norse 1.1.0, written to NIR by the frameworks' own
exporters (snntorch.export_to_nir, norse.torch.to_nir), and run by the frameworks themselves with their
spikes recorded per NIR neuron node key: the material tests/export/test_nir_import.py checks our NIR
import against."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from dsatgo_deploy.runs import RunRecord

HIDDEN = 48
BETA_HIDDEN, BETA_OUT = 0.85, 0.9
SNNTORCH_DT = 1e-4  # snnTorch 1.0.0's exporter writes its neurons for this step
NORSE_DT = 1e-3  # Norse's default; its to_nir writes tau = dt / tau_mem_inv, which runs as Norse with dt**2
#: per-neuron thresholds of the hidden layer: the importer rescales each row (export/nir_neurons.py)
HIDDEN_THRESHOLDS = torch.linspace(0.75, 1.25, HIDDEN)


def _leaky(size, beta: float, threshold, output: bool = False):
    import snntorch as snn

    shape = size if isinstance(size, tuple) else (size,)
    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.as_tensor(threshold).expand(shape).clone(),
                     reset_mechanism="zero", init_hidden=True, output=output)


class SnnTorchMLP(torch.nn.Module):
    """64 -> 48 Leaky (per-neuron thresholds) -> 10 Leaky; reset to zero (NIR's reset; snnTorch's default
    subtracts, which its exporter writes as v_reset = 0 all the same)."""

    keys = ("lif1", "lif2")

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(64, HIDDEN)
        self.lif1 = _leaky(HIDDEN, BETA_HIDDEN, HIDDEN_THRESHOLDS)
        self.fc2 = torch.nn.Linear(HIDDEN, 10)
        self.lif2 = _leaky(10, BETA_OUT, 1.0, output=True)

    def forward(self, x):
        spk1 = self.lif1(self.fc1(x))
        spk2, _ = self.lif2(self.fc2(spk1))
        return spk1, spk2


class SnnTorchConv(torch.nn.Module):
    """(1, 8, 8) -> conv 6 (3x3, pad 1) Leaky (a threshold per channel) -> 2x2 average pool -> flatten -> 10 Leaky."""

    keys = ("lif1", "lif2")

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.lif1 = _leaky((6, 8, 8), BETA_HIDDEN, torch.linspace(0.8, 1.2, 6).reshape(6, 1, 1))
        self.pool = torch.nn.AvgPool2d(2)
        self.flat = torch.nn.Flatten()
        self.fc = torch.nn.Linear(96, 10)
        self.lif2 = _leaky(10, BETA_OUT, 1.0, output=True)

    def forward(self, x):
        spk1 = self.lif1(self.conv1(x))
        spk2, _ = self.lif2(self.fc(self.flat(self.pool(spk1))))
        return spk1, spk2


@torch.no_grad()
def fit_conv_readout(model: SnnTorchConv, x: np.ndarray, y: np.ndarray, steps: int, target: float = 1.0,
                     ridge: float = 10.0) -> None:
    """Train the conv net's readout in closed form (seconds): ridge regression of one-hot targets (the right
    class's input current ``target`` per step, the others 0) on the pooled conv spike rates. A strong ridge
    keeps the weights' range small, as Loihi's 8-bit weights want (with 0.01 the largest weight is 8x the
    mean and the deployed readout agrees with snnTorch's on 93 % of spike counts; with 10, 98 %)."""
    from snntorch import utils

    utils.reset(model)
    inputs = torch.from_numpy(np.asarray(x, np.float32))
    rates = sum(model.flat(model.pool(model.lif1(model.conv1(inputs)))) for _ in range(steps)) / steps
    features = torch.cat([rates, torch.ones(len(rates), 1)], dim=1).double()
    goal = torch.nn.functional.one_hot(torch.from_numpy(np.asarray(y, np.int64)), 10).double() * target
    gram = features.T @ features + ridge * torch.eye(features.shape[1], dtype=torch.float64)
    solution = torch.linalg.solve(gram, features.T @ goal)
    model.fc.weight.copy_(solution[:-1].T.float())
    model.fc.bias.copy_(solution[-1].float())


class SnnTorchSynaptic(torch.nn.Module):
    """64 -> 32 Synaptic (NIR's CubaLIF: a synaptic current, alpha 0.6) -> 10 Leaky; no bias before the
    CubaLIF (Loihi has no bias on the current)."""

    keys = ("syn1", "lif2")

    def __init__(self) -> None:
        import snntorch as snn

        super().__init__()
        self.fc1 = torch.nn.Linear(64, 32, bias=False)
        self.syn1 = snn.Synaptic(alpha=torch.full((32,), 0.6), beta=torch.full((32,), 0.8), threshold=torch.ones(32),
                                 reset_mechanism="zero", init_hidden=True)
        self.fc2 = torch.nn.Linear(32, 10)
        self.lif2 = _leaky(10, BETA_OUT, 1.0, output=True)

    def forward(self, x):
        spk1 = self.syn1(self.fc1(x))
        spk2, _ = self.lif2(self.fc2(spk1))
        return spk1, spk2


@torch.no_grad()
def run_snntorch(model: torch.nn.Module, x: np.ndarray, steps: int) -> RunRecord:
    """snnTorch's own run: the same x at every step, spikes per NIR node key; the class is the output layer's
    spike count argmax (ties: the lowest index, as our reference's rule)."""
    from snntorch import utils

    utils.reset(model)
    trains: dict[str, list[np.ndarray]] = {key: [] for key in model.keys}
    inputs = torch.from_numpy(np.asarray(x, dtype=np.float32))
    for _ in range(steps):
        for key, spikes in zip(model.keys, model(inputs)):  # forward returns spikes in ``keys`` order
            trains[key].append(spikes.reshape(len(inputs), -1).numpy())
    spikes = {key: np.stack(trains[key], axis=1).astype(bool) for key in model.keys}
    return RunRecord("snntorch", spikes, spikes[model.keys[-1]].sum(axis=1).argmax(axis=1))


def train_snntorch_mlp(x: np.ndarray, y: np.ndarray, steps: int, epochs: int = 4, seed: int = 0) -> SnnTorchMLP:
    """A few seconds of surrogate-gradient training on spike counts (snnTorch's default ATan surrogate)."""
    from snntorch import utils

    torch.manual_seed(seed)
    model = SnnTorchMLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    data, labels = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(data), generator=generator).split(128):
            utils.reset(model)
            counts = sum(model(data[batch])[-1] for _ in range(steps))
            loss = torch.nn.functional.cross_entropy(counts, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def write_snntorch(model: torch.nn.Module, sample: np.ndarray, path: Path) -> Path:
    """snnTorch's exporter, then nir.write."""
    import nir
    from snntorch.export_nir import export_to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_to_nir(model, torch.from_numpy(np.asarray(sample[:1], np.float32)), ignore_dims=[0])
    nir.write(str(path), graph)
    return path


def norse_mlp_from(source: SnnTorchMLP):
    """The trained snnTorch MLP's weights in Norse: LIFBoxCell (v += dt/tau (v_leak - v + i)) whose decay
    1 - dt tau_mem_inv equals snnTorch's beta, the synapses scaled by 1 / (dt tau_mem_inv), and a leaky LI
    readout (LIBoxCell) instead of a spiking output layer. Norse's nir.write needs per-neuron parameters
    (nir 1.0.8 cannot store its default scalar ones: 'Scalar datasets don't support chunk/filter options')."""
    import norse.torch as norse

    hidden_inv, out_inv = (1 - BETA_HIDDEN) / NORSE_DT, (1 - BETA_OUT) / NORSE_DT
    model = norse.SequentialState(
        torch.nn.Linear(64, HIDDEN),
        norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.full((HIDDEN,), hidden_inv),
                                                v_th=HIDDEN_THRESHOLDS.clone(), v_leak=torch.zeros(HIDDEN)), dt=NORSE_DT),
        torch.nn.Linear(HIDDEN, 10),
        norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.full((10,), out_inv), v_leak=torch.zeros(10)),
                        dt=NORSE_DT))
    with torch.no_grad():
        model[0].weight.copy_(source.fc1.weight / (NORSE_DT * hidden_inv))
        model[0].bias.copy_(source.fc1.bias / (NORSE_DT * hidden_inv))
        model[2].weight.copy_(source.fc2.weight / (NORSE_DT * out_inv))
        model[2].bias.copy_(source.fc2.bias / (NORSE_DT * out_inv))
    return model


@torch.no_grad()
def run_norse(model, x: np.ndarray, steps: int) -> RunRecord:
    """Norse's own run, one cell step per timestep carrying the state; node keys as to_nir names them ("1": the
    LIF, "3": the LI readout); the class: argmax of the readout's v after T steps."""
    inputs = torch.from_numpy(np.asarray(x, dtype=np.float32))
    hidden_state = readout_state = None
    trains, potential = [], None
    for _ in range(steps):
        spikes, hidden_state = model[1](model[0](inputs), hidden_state)
        potential, readout_state = model[3](model[2](spikes), readout_state)
        trains.append(spikes.numpy())
    return RunRecord("norse", {"1": np.stack(trains, axis=1).astype(bool)}, potential.numpy().argmax(axis=1),
                     readout_trace=None)


def write_norse(model, sample: np.ndarray, path: Path) -> Path:
    import nir
    import norse.torch as norse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = norse.to_nir(model, torch.from_numpy(np.asarray(sample[:1], np.float32)), dt=NORSE_DT)
    nir.write(str(path), graph)
    return path
