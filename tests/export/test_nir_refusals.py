"""What a NIR file holds that Loihi cannot run is refused with one line naming the file, the node and the field
(export/nir_graph.py, nir_neurons.py); `dsatgo-export` exits 2 with that line."""

from __future__ import annotations

import numpy as np
import pytest

from dsatgo_deploy.cli import export_main
from dsatgo_deploy.errors import UserError
from dsatgo_deploy.export.nir_import import import_nir

DT = 1e-4


def _lif(n: int, **changes):
    import nir

    fields = {"tau": np.full(n, 5 * DT), "r": np.full(n, 5.0), "v_leak": np.zeros(n), "v_threshold": np.ones(n),
              "v_reset": np.zeros(n)}
    fields.update(changes)
    return nir.LIF(**fields)


def _chain(*middle, inputs: int = 4):
    """input -> middle nodes (named by their keys) -> output, as one chain."""
    import nir

    nodes = {"input": nir.Input(input_type=np.array([inputs]))}
    nodes.update(dict(middle))
    nodes["output"] = nir.Output(output_type=np.array([3]))
    keys = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(keys, keys[1:])), type_check=False)


def _affine(rows: int = 3, cols: int = 4, bias: float = 0.0):
    import nir

    return nir.Affine(weight=np.random.default_rng(0).normal(size=(rows, cols)), bias=np.full(rows, bias))


def _cases():
    import nir

    recurrent = _chain(("fc", _affine()), ("lif", _lif(3)))
    recurrent.nodes["rec"] = nir.Linear(weight=np.eye(3))
    recurrent.edges += [("lif", "rec"), ("rec", "lif")]
    cuba = nir.CubaLIF(tau_syn=np.full(3, 2 * DT), tau_mem=np.full(3, 5 * DT), r=np.ones(3), v_leak=np.zeros(3),
                       v_threshold=np.ones(3), v_reset=np.zeros(3))
    conv = nir.Conv2d(input_shape=(4, 4), weight=np.ones((2, 1, 3, 3)), stride=1, padding=0, dilation=1, groups=1,
                      bias=np.zeros(2))
    conv_lif = nir.LIF(tau=np.full((2, 2, 2), 5 * DT), r=np.ones((2, 2, 2)), v_leak=np.zeros((2, 2, 2)),
                       v_threshold=np.arange(1.0, 9.0).reshape(2, 2, 2), v_reset=np.zeros((2, 2, 2)))
    conv_graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([1, 4, 4])), "conv": conv,
                                     "lif": conv_lif, "output": nir.Output(output_type=np.array([2, 2, 2]))},
                              edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")], type_check=False)
    subtract = _lif(3)
    subtract.metadata = {"reset_mechanism": "subtract"}
    return {
        "v_reset": (_chain(("fc", _affine()), ("lif1", _lif(3, v_reset=np.full(3, -0.5)))), "node 'lif1' (LIF): field 'v_reset'"),
        "recurrent": (recurrent, "edge 'rec' -> 'lif' is recurrent"),
        "node type": (_chain(("fc", _affine()), ("thr", nir.Threshold(threshold=np.ones(3)))),
                      "node 'thr' (Threshold): node type Threshold has no Loihi mapping"),
        "subtractive reset": (_chain(("fc", _affine()), ("lif", subtract)),
                              "node 'lif' (LIF): field 'metadata/reset_mechanism'"),
        "bias into a current": (_chain(("fc", _affine(bias=0.5)), ("cuba", cuba)), "node 'fc': field 'bias'"),
        "tau per neuron": (_chain(("fc", _affine()), ("lif", _lif(3, tau=np.array([2, 3, 4]) * DT))),
                           "node 'lif' (LIF): field 'tau': varies across the layer"),
        "threshold within a channel": (conv_graph, "node 'lif' (LIF): field 'v_threshold': differs within a channel"),
        "tau below dt": (_chain(("fc", _affine()), ("lif", _lif(3, tau=np.full(3, DT / 2)))),
                         "node 'lif' (LIF): field 'tau'"),
        "no synapse": (_chain(("lif", _lif(4))), "node 'lif' (LIF): reads no synapse"),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_unmappable_nodes_are_refused_naming_file_node_and_field(case, tmp_path):
    import nir

    graph, expected = _cases()[case]
    path = tmp_path / f"{case.replace(' ', '_')}.nir"
    nir.write(str(path), graph)
    with pytest.raises(UserError) as raised:
        import_nir(path, dt=DT, timesteps=4)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message, message


def test_a_recurrent_snntorch_layer_is_refused(tmp_path):
    """snnTorch's RLeaky is written as a subgraph with a recurrent edge (nir.read flattens it to '1.lif', ...)."""
    import nir
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), snn.RLeaky(beta=0.9, linear_features=3, init_hidden=True))
    path = tmp_path / "rleaky.nir"
    nir.write(str(path), export_to_nir(net, torch.rand(1, 4), ignore_dims=[0]))
    with pytest.raises(UserError, match=r"edge '1\.w_rec' -> '1\.lif' is recurrent"):
        import_nir(path, dt=DT, timesteps=4)


def test_export_cli_refuses_with_one_line_and_exit_2(tmp_path, capsys):
    import nir

    graph, expected = _cases()["v_reset"]
    path = tmp_path / "bad.nir"
    nir.write(str(path), graph)
    assert export_main([str(path), "--target", "loihi", "--dt", str(DT), "--timesteps", "4",
                        "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and str(path) in err
    assert not (tmp_path / "out").exists()
    # no dt anywhere: the line says which flag gives it
    good = tmp_path / "good.nir"
    nir.write(str(good), _chain(("fc", _affine()), ("lif", _lif(3))))
    assert export_main([str(good), "--timesteps", "4", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no 'dt' in its metadata" in err and "--dt" in err
