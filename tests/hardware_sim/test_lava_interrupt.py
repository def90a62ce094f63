"""A Lava run leaves nothing behind: Ctrl-C (SIGINT to the process group, as a terminal sends it) ends
`dsatgo sim --backend lava` within 5 s with one line and exit 130; a SIGKILLed parent's children notice and
exit; --timeout ends the run with one line and exit 2. In each case no process of the run survives and no
temporary folder remains."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DSATGO = [sys.executable, "-m", "dsatgo_deploy.cli"]


def _group(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


def _start_lava_run(network: Path, tmp: Path, *extra: str) -> subprocess.Popen:
    """`dsatgo sim --backend lava` on all 360 digits test samples in a session of its own, TMPDIR in ``tmp``;
    returns once Lava's processes run (the parent, its actors and the shared-memory manager)."""
    run = subprocess.Popen([*DSATGO, "sim", str(network), "--backend", "lava", *extra], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, start_new_session=True, env={**os.environ, "TMPDIR": str(tmp)})
    deadline = time.monotonic() + 120
    while len(_group(run.pid)) < 4 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None and len(_group(run.pid)) >= 4, "the Lava run never started its processes"
    assert any(p.name.startswith("dsatgo-lava-") for p in tmp.iterdir())
    return run


def _nothing_left(pgid: int, tmp: Path, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while (_group(pgid) or list(tmp.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group(pgid) == [], "processes of the run survived"
    assert list(tmp.iterdir()) == [], "temporary folders survived"


def test_ctrl_c_ends_a_lava_run_within_5_s_with_one_line(exported, tmp_path):
    run = _start_lava_run(exported.out_dir, tmp_path)
    time.sleep(0.5)
    sent = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    try:
        out, err = run.communicate(timeout=15)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert time.monotonic() - sent < 5.0
    assert run.returncode == 130
    assert err.decode().strip() == "dsatgo: interrupted"
    _nothing_left(run.pid, tmp_path)


def test_children_of_a_killed_parent_exit_and_remove_its_folders(exported, tmp_path):
    run = _start_lava_run(exported.out_dir, tmp_path)
    run.kill()  # SIGKILL: the parent cleans nothing up
    run.wait()
    _nothing_left(run.pid, tmp_path)


def test_timeout_ends_a_lava_run_with_one_line_and_exit_2(exported, tmp_path):
    run = subprocess.Popen([*DSATGO, "sim", str(exported.out_dir), "--backend", "lava", "--timeout", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                           env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 2, err.decode()
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "did not finish within 1.0 s" in lines[0] and out == b""
    _nothing_left(run.pid, tmp_path)


@pytest.mark.parametrize("bad", ["nan", "-1"])
def test_run_timeout_refuses_a_bad_limit(bad):
    from dsatgo_deploy.hardware_sim.lava_backend import run_timeout

    with pytest.raises(ValueError, match="timeout must be > 0"):
        with run_timeout(float(bad)):
            pass
