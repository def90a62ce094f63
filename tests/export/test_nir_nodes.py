"""The NIR nodes no framework test above writes (Conv1d, SumPool2d, Scale, IF, LI, I, v_leak, several edges into
one node), in hand-made graphs: the import (export/nir_graph.py) fires exactly where the NIR spec's equations,
stepped here by forward Euler with torch's functional ops, fire; the deployed network runs on the reference."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dsatgo_deploy.export.freeze import run_frozen
from dsatgo_deploy.export.nir_import import frozen_from_nir, import_nir
from dsatgo_deploy.hardware_sim.reference import simulate

DT, STEPS = 1e-3, 6


def _graphs():
    import nir

    rng = np.random.default_rng(3)
    conv = nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.6, (3, 1, 3, 3)), stride=1, padding=1, dilation=1,
                      groups=1, bias=np.array([0.1, 0.0, -0.1]))
    if_node = nir.IF(r=np.full((3, 8, 8), 1 / DT), v_threshold=np.broadcast_to(np.array([1.0, 0.8, 1.2])[:, None, None],
                                                                                (3, 8, 8)).copy())
    image = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1, 8, 8])), "conv": conv, "if1": if_node,
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0, end_dim=-1),
        "half": nir.Scale(scale=np.full(48, 0.5)),
        "fc": nir.Affine(weight=rng.normal(0, 0.3, (10, 48)), bias=np.zeros(10)),
        "li": nir.LI(tau=np.full(10, 4 * DT), r=np.full(10, 2.0), v_leak=np.full(10, 0.3)),
        "output": nir.Output(output_type=np.array([10]))},
        edges=[("input", "conv"), ("conv", "if1"), ("if1", "pool"), ("pool", "flat"), ("flat", "half"),
               ("half", "fc"), ("fc", "li"), ("li", "output")], type_check=False)
    conv1d = nir.Conv1d(input_shape=16, weight=rng.normal(0, 0.8, (4, 2, 3)), stride=2, padding=1, dilation=1,
                        groups=1, bias=np.zeros(4))
    lif = nir.LIF(tau=np.full((4, 8), 3 * DT), r=np.full((4, 8), 3.0), v_leak=np.full((4, 8), 0.2),
                  v_threshold=np.full((4, 8), 0.9), v_reset=np.zeros((4, 8)))
    lif_b = nir.LIF(tau=np.full(12, 2 * DT), r=np.full(12, 2.0), v_leak=np.zeros(12),
                    v_threshold=np.linspace(0.5, 1.5, 12), v_reset=np.zeros(12))
    sequence = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([2, 16])), "conv": conv1d, "lif": lif,
        "flat": nir.Flatten(input_type={"input": np.array([4, 8])}, start_dim=0, end_dim=-1),
        "fa": nir.Linear(weight=rng.normal(0, 0.5, (12, 32))), "fb": nir.Linear(weight=rng.normal(0, 0.5, (12, 32))),
        "lif_a": nir.LIF(tau=np.full(12, 2 * DT), r=np.full(12, 2.0), v_leak=np.zeros(12), v_threshold=np.full(12, 0.7),
                         v_reset=np.zeros(12)),
        "lif_b": lif_b,
        "fc": nir.Linear(weight=rng.normal(0, 0.5, (5, 12))), "gain": nir.Scale(scale=np.linspace(0.5, 2.0, 5)),
        "acc": nir.I(r=np.full(5, 1 / DT)), "output": nir.Output(output_type=np.array([5]))},
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "fa"), ("flat", "fb"), ("fa", "lif_a"),
               ("fb", "lif_b"), ("lif_a", "fc"), ("lif_b", "fc"), ("fc", "gain"), ("gain", "acc"), ("acc", "output")],
        type_check=False)
    return {"image": (image, (1, 8, 8)), "sequence": (sequence, (2, 16))}


def _step(node, state: dict, key: str, x: torch.Tensor) -> torch.Tensor:
    """One forward-Euler step of a NIR neuron node (the spec's equations), spikes or v."""
    kind = type(node).__name__
    p = {name: torch.as_tensor(np.asarray(getattr(node, name)), dtype=torch.float64).reshape(x.shape[1:])
         for name in ("tau", "r", "v_leak", "v_threshold", "v_reset") if getattr(node, name, None) is not None}
    v = state.get(key, torch.zeros_like(x))
    v = v + (DT / p["tau"] * ((p["v_leak"] - v) + p["r"] * x) if "tau" in p else DT * p["r"] * x)
    if "v_threshold" not in p:  # LI, I: a readout
        state[key] = v
        return v
    fired = v > p["v_threshold"]
    state[key] = torch.where(fired, p["v_reset"], v)
    return fired.to(torch.float64)


def _spec_run(graph, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The graph stepped by the spec: nodes in edge order, several inputs summed; spikes per spiking node."""
    nodes, edges = graph.nodes, graph.edges
    order = ["input"]
    while len(order) < len(nodes):
        order += [k for k in nodes if k not in order and all(a in order for a, b in edges if b == k)]
    state: dict = {}
    trains: dict[str, list] = {}
    for _ in range(STEPS):
        values = {"input": torch.from_numpy(np.asarray(x, np.float64))}
        for key in order[1:]:
            n, kind = nodes[key], type(nodes[key]).__name__
            x_in = sum(values[a] for a, b in edges if b == key)
            if kind == "Conv2d":
                out = F.conv2d(x_in, torch.as_tensor(n.weight), torch.as_tensor(n.bias), padding=1)
            elif kind == "Conv1d":
                out = F.conv1d(x_in, torch.as_tensor(n.weight), torch.as_tensor(n.bias), stride=2, padding=1)
            elif kind == "SumPool2d":
                out = F.avg_pool2d(x_in, 2) * 4
            elif kind == "Flatten":
                out = x_in.flatten(1)
            elif kind == "Scale":
                out = x_in * torch.as_tensor(n.scale)
            elif kind in ("Affine", "Linear"):
                out = x_in @ torch.as_tensor(n.weight).T + (torch.as_tensor(n.bias) if kind == "Affine" else 0)
            elif kind == "Output":
                out = x_in
            else:
                out = _step(n, state, key, x_in)
                if kind in ("IF", "LIF"):
                    trains.setdefault(key, []).append(out.reshape(len(out), -1).numpy().astype(bool))
            values[key] = out
    return {k: np.stack(v, axis=1) for k, v in trains.items()}, values["output"].numpy()


def test_hand_made_graphs_follow_the_nir_equations(tmp_path, digits):
    import nir

    rng = np.random.default_rng(0)
    for name, (graph, shape) in _graphs().items():
        path = tmp_path / f"{name}.nir"
        nir.write(str(path), graph)
        x = (digits.x_test[:40].reshape(-1, 1, 8, 8) if name == "image"
             else rng.random((40, *shape)).round(2))
        spikes, readout = _spec_run(nir.read(str(path), type_check=False), x)
        frozen, _ = frozen_from_nir(path, dt=DT, timesteps=STEPS)
        ours_readout, ours, _ = run_frozen(frozen, x)
        assert set(ours) == set(spikes), name
        for key in spikes:
            assert spikes[key].sum() > 0 and np.array_equal(ours[key], spikes[key]), (name, key)
        np.testing.assert_allclose(ours_readout, readout, rtol=1e-9, atol=1e-9)
        # deployed: the integer network runs, its layers named by the NIR nodes, classes close to the float ones
        net, _, _ = import_nir(path, dt=DT, timesteps=STEPS, calibration_x=x)
        record = simulate(net, x)
        assert [layer.name for layer in net.layers] == list(frozen_layer.name for frozen_layer in frozen.layers)
        assert (record.predictions == readout.argmax(axis=1)).mean() >= 0.9, name
