"""Run dsatgo's integer ONNX step graph (--target onnx) with onnxruntime alone, without dsatgo_deploy.
Usage: python onnx_example.py network.onnx samples.npy   (samples shaped (B, *input_shape), raw values)"""
import json
import sys

import numpy as np
import onnxruntime as ort


def run(onnx_path: str, x: np.ndarray) -> np.ndarray:
    """The network output of each sample (argmax: the class): the readout's v after T steps."""
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["dsatgo"])
    enc, (lo, hi) = meta["input_encoding"], meta["input_payload_range"]
    x = np.asarray(x, np.float64).reshape(len(x), *meta["input_shape"])
    if enc["mean"] is not None:  # per-channel normalisation is the host's job
        shape = (1, -1) + (1,) * (x.ndim - 2)
        x = (x - np.reshape(enc["mean"], shape)) / np.reshape(enc["std"], shape)
    m = (x != 0) if enc["kind"] == "spikes" else np.clip(np.round(x / meta["input_quantum"]), lo, hi)
    state = {i.name: np.zeros((len(x), *i.shape[1:]), np.int64)
             for i in session.get_inputs() if i.name not in ("x", "t")}  # <layer>.u, <layer>.v, ...: zeros at t = 0
    names, total = [o.name for o in session.get_outputs()], 0
    for t in range(meta["timesteps"]):  # the same x at every step: direct encoding
        out = dict(zip(names, session.run(None, {"x": m.astype(np.int64), "t": np.array(t, np.int64), **state})))
        state = {name: out[name + "_next"] for name in state}
        total = total + (out[meta["output_name"]] != 0)  # spike (message) counts when there is no readout
    return out[meta["output_name"]] if meta["output_name"].endswith("_next") else total


if __name__ == "__main__":
    print(run(sys.argv[1], np.load(sys.argv[2])).argmax(axis=1))
