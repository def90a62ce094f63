"""CIFAR10-DVS from its public layouts: AER-DAT 2.0 class folders and SpikingJelly's frame files."""

from __future__ import annotations

import numpy as np
import pytest

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.train.data import load_dataset
from dsatgo_deploy.train.event_data import events_to_frames, load_cifar10_dvs_files, read_aedat2
from dsatgo_deploy.train.loop import TrainConfig, load_training_data

HEADER = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Data format is int32 address, int32 timestamp\r\n"


def write_aedat2(path, x_addr, y_addr, p_addr, t) -> None:
    """AER-DAT 2.0 as jAER writes it: '#' header lines, then big-endian (address, timestamp) pairs."""
    address = (np.asarray(y_addr) << 8) | (np.asarray(x_addr) << 1) | np.asarray(p_addr)
    words = np.empty(2 * len(address), dtype=">u4")
    words[0::2], words[1::2] = address, t
    path.write_bytes(HEADER + words.tobytes())


def fake_dvs_recordings(root, classes=("airplane", "automobile"), per_class=10, events=25, seed=0):
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            write_aedat2(root / name / f"cifar10_{name}_{index}.aedat", rng.integers(0, 128, events),
                         rng.integers(0, 128, events), rng.integers(0, 2, events), np.sort(rng.integers(0, 10**6, events)))


def test_aedat2_events_decode_with_the_sensor_orientation(tmp_path):
    path = tmp_path / "one.aedat"
    write_aedat2(path, x_addr=[5, 127, 0], y_addr=[10, 0, 127], p_addr=[0, 1, 1], t=[7, 8, 4_000_000_000])
    events = read_aedat2(path)
    np.testing.assert_array_equal(events["x"], [117, 127, 0])  # column = 127 - y address
    np.testing.assert_array_equal(events["y"], [122, 0, 127])  # row = 127 - x address
    np.testing.assert_array_equal(events["p"], [1, 0, 0])
    np.testing.assert_array_equal(events["t"], [7, 8, 4_000_000_000])  # unsigned 32-bit timestamps
    path.write_bytes(HEADER + b"\x00" * 12)
    with pytest.raises(UserError, match="not a multiple of 8"):
        read_aedat2(path)


def test_frames_split_events_by_count():
    events = {"x": np.array([0, 1, 2, 3, 4, 5, 6]), "y": np.zeros(7, int), "p": np.array([0, 1, 0, 1, 0, 1, 1]),
              "t": np.arange(7)}
    frames = events_to_frames(events, 3)  # 7 // 3 = 2 per slice, the last slice takes 3
    assert frames.shape == (3, 2, 128, 128) and frames.sum() == 7
    slices = [np.nonzero(frames[t].sum(axis=(0, 1)))[0].tolist() for t in range(3)]
    assert slices == [[0, 1], [2, 3], [4, 5, 6]]
    assert frames[0, 0, 0, 0] == 1 and frames[0, 1, 0, 1] == 1 and frames[2, 1, 0, 6] == 1
    few = events_to_frames({k: v[:2] for k, v in events.items()}, 3)  # fewer events than frames: all in the last
    assert few[:2].sum() == 0 and few[2].sum() == 2


def test_aedat_folders_and_spikingjelly_frames_give_the_same_split(tmp_path):
    fake_dvs_recordings(tmp_path / "raw")
    data = load_cifar10_dvs_files(tmp_path / "raw", timesteps=4, size=128)
    assert data.x_train.shape == (18, 4, 2, 128, 128) and data.x_test.shape == (2, 4, 2, 128, 128)
    assert data.y_train.tolist() == [0] * 9 + [1] * 9 and data.y_test.tolist() == [0, 1]
    assert data.encoding == "sequence" and data.input_quantum == 1.0 and data.num_classes == 2
    assert data.x_train.sum(axis=(1, 2, 3, 4)).tolist() == [25.0] * 18  # every event counted once
    # the same recordings written as SpikingJelly's integrated frames
    frames_root = tmp_path / "sj" / "frames_number_4_split_by_number"
    for label, name in enumerate(("airplane", "automobile")):
        (frames_root / name).mkdir(parents=True)
        files = sorted((tmp_path / "raw" / name).glob("*.aedat"))
        for path in files:
            np.savez_compressed(frames_root / name / (path.stem + ".npz"),
                                frames=events_to_frames(read_aedat2(path), 4).astype(np.int16))
    again = load_dataset("cifar10_dvs", root=tmp_path / "sj", timesteps=4, size=128)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.y_test, data.y_test)
    small = load_cifar10_dvs_files(tmp_path / "raw", timesteps=4, size=48)
    assert small.x_train.shape == (18, 4, 2, 48, 48) and small.input_quantum is None
    # antialiased resizing keeps the event mass (up to the border)
    assert small.x_train.sum() * (128 / 48) ** 2 == pytest.approx(data.x_train.sum(), rel=0.15)


def test_missing_or_bad_dvs_files_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="no CIFAR10-DVS files"):
        load_cifar10_dvs_files(tmp_path)
    (tmp_path / "frames_number_10_split_by_number" / "cat").mkdir(parents=True)
    np.savez(tmp_path / "frames_number_10_split_by_number" / "cat" / "a.npz", frames=np.zeros((3, 2, 8, 8)))
    with pytest.raises(UserError, match=r"field 'frames' has shape \(3, 2, 8, 8\), expected \(10, 2, H, W\)"):
        load_cifar10_dvs_files(tmp_path)
    np.savez(tmp_path / "frames_number_10_split_by_number" / "cat" / "a.npz", frames=np.array([None] * 4, object))
    with pytest.raises(UserError, match="not a readable .npz"):
        load_cifar10_dvs_files(tmp_path)
    (tmp_path / "frames_number_10_split_by_number" / "cat" / "a.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable .npz"):
        load_cifar10_dvs_files(tmp_path)


def test_training_integrates_as_many_frames_as_timesteps(tmp_path):
    fake_dvs_recordings(tmp_path / "raw", per_class=2, events=12)
    data = load_training_data(TrainConfig(dataset="cifar10_dvs", data_root=str(tmp_path / "raw"), model="vggsnn",
                                          timesteps=3))
    assert data.x_train.shape == (4, 3, 2, 48, 48) and data.timesteps == 3
