"""The memory budget every reader uses, and its bounded helpers."""

from __future__ import annotations

import gzip

import pytest

from dsatgo_deploy import limits
from dsatgo_deploy.errors import UserError


@pytest.mark.parametrize("text, size", [("1024", 1024), ("512M", 512 << 20), ("16G", 16 << 30), ("1.5K", 1536),
                                        ("2GiB", 2 << 30), ("1t", 1 << 40)])
def test_sizes_parse(text, size):
    assert limits.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "0", "ten", "5X", "1e9"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError):
        limits.parse_size(text)


def test_default_budget_is_half_of_memavailable(monkeypatch):
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    with open("/proc/meminfo") as handle:
        available = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemAvailable:"))
    # memory moves while we read it: within 5 % of what /proc/meminfo said a moment ago
    assert abs(limits.memory_budget() - available // 2) < 0.05 * available


def test_environment_and_override(monkeypatch):
    monkeypatch.setenv(limits.ENV_VAR, "3M")
    assert limits.memory_budget() == 3 << 20
    with limits.budget_override(5 << 20):
        assert limits.memory_budget() == 5 << 20
        with limits.budget_override(None):
            assert limits.memory_budget() == 5 << 20
    assert limits.memory_budget() == 3 << 20
    monkeypatch.setenv(limits.ENV_VAR, "lots")
    with pytest.raises(UserError, match="DSATGO_MEMORY_BUDGET: not a size: 'lots'"):
        limits.memory_budget()


def test_check_memory_names_file_sizes_and_the_way_out(monkeypatch):
    monkeypatch.setenv(limits.ENV_VAR, "1M")
    limits.check_memory("f.npz", "its arrays", 1 << 20)
    with pytest.raises(UserError, match=r"^f.npz: its arrays would need 2.0 MiB of memory, beyond the budget of 1.0 MiB "
                                        r"\(raise it with --memory-budget or DSATGO_MEMORY_BUDGET"):
        limits.check_memory("f.npz", "its arrays", 2 << 20)


def test_gunzip_stops_at_the_budget(tmp_path, monkeypatch):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(bytes(8 << 20)))
    monkeypatch.setenv(limits.ENV_VAR, "2M")
    with pytest.raises(UserError, match="decompressed contents"):
        limits.gunzip(path)
    monkeypatch.setenv(limits.ENV_VAR, "16M")
    assert limits.gunzip(path) == bytes(8 << 20)


def test_json_depth_is_measured_without_recursion():
    assert limits.json_depth_ok('{"a": [[1], {"b": "[[[[["}]}', max_depth=3)
    assert not limits.json_depth_ok("[" * 5 + "]" * 5, max_depth=4)
    assert limits.load_json("h", "the header", b'{"x": [1, 2]}') == {"x": [1, 2]}
    with pytest.raises(UserError, match="nests deeper than 64 levels"):
        limits.load_json("h", "the header", b"[" * 10 ** 6 + b"]" * 10 ** 6)


@pytest.mark.parametrize("value, ok", [(1, True), (limits.MAX_TIMESTEPS, True), (0, False), (limits.MAX_TIMESTEPS + 1, False),
                                       (2.5, False), (True, False), ("4", False)])
def test_timesteps_bounds(value, ok):
    if ok:
        assert limits.check_timesteps("f", "timesteps", value) == value
    else:
        with pytest.raises(UserError, match="f: field 'timesteps'"):
            limits.check_timesteps("f", "timesteps", value)
