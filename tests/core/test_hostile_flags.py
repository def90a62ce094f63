"""Every bad flag value of every command: exit 2, one line on stderr naming the flag, no traceback, nothing
on stdout, nothing written."""

from __future__ import annotations

import pytest

from dsatgo_deploy.cli import export_main, main

# (argv, the text the one line must hold)
ROWS = [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "-3"], "--epochs"),
    (["train", "--epochs", "2.5"], "--epochs"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--hidden", "64", "0"], "--hidden"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "-T", "0"], "--timesteps"),
    (["train", "--momentum", "1.5"], "--momentum"),
    (["train", "--weight-decay", "-1e-4"], "--weight-decay"),
    (["train", "--label-smoothing", "1"], "--label-smoothing"),
    (["train", "--width", "0"], "--width"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--device", "nonsense"], "--device"),
    (["train", "--device", "cuda:99"], "--device"),
    (["train", "--channels", "32", "poo"], "--channels"),
    (["train", "--optimizer", "rmsprop"], "--optimizer"),
    (["train", "--dataset", "svhn"], "--dataset"),
    (["export", "m.pt", "--calibrate", "-1"], "--calibrate"),
    (["export", "m.pt", "--input-bits", "0"], "--input-bits"),
    (["export", "m.pt", "--input-bits", "99"], "--input-bits"),
    (["export", "m.pt", "--input-bits", "-3"], "--input-bits"),
    (["export", "m.pt", "--target", "fpga"], "--target"),
    (["export", "m.pt", "--threshold-policy", "none"], "--threshold-policy"),
    (["sim", "net", "--samples", "0"], "--samples"),
    (["sim", "net", "--samples", "-5"], "--samples"),
    (["sim", "net", "--timesteps", "0"], "--timesteps"),
    (["sim", "net", "--input-bits", "25"], "--input-bits"),
    (["sim", "net", "--input-shape", "1,0,8"], "--input-shape"),
    (["sim", "net", "--input-shape", "a,b"], "--input-shape"),
    (["sim", "net", "--timeout", "0"], "--timeout"),
    (["sim", "net", "--timeout", "nan"], "--timeout"),
    (["sim", "net", "--backend", "torch"], "--backend"),
    (["sim", "net", "--device", "cuda:99"], "--device"),
    (["parity", "--min-class-agreement", "nan"], "--min-class-agreement"),
    (["parity", "--min-class-agreement", "-0.1"], "--min-class-agreement"),
    (["parity", "--min-spike-agreement", "1.5"], "--min-spike-agreement"),
    (["parity", "--samples", "0"], "--samples"),
    (["parity", "--timeout", "-1"], "--timeout"),
    (["parity", "--sides", "torch,abacus"], "--sides"),
    (["report", "net", "--samples", "0"], "--samples"),
    (["report", "net", "--calibrate", "-1"], "--calibrate"),
    (["report", "net", "--format", "pdf"], "--format"),
    (["report", "net", "--timeout", "inf"], "--timeout"),
    (["demo", "--epochs", "0"], "--epochs"),
    (["demo", "--samples", "-1"], "--samples"),
]


def _exit_code(entry, argv: list[str]) -> int:
    try:
        return entry(argv)
    except SystemExit as exc:  # argparse's exit
        return int(exc.code)


@pytest.mark.parametrize("argv, flag", ROWS, ids=[" ".join(a) for a, _ in ROWS])
def test_bad_flag_exits_2_with_one_line(tmp_path, monkeypatch, capsys, argv, flag):
    monkeypatch.chdir(tmp_path)
    assert _exit_code(main, argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"dsatgo {argv[0]}: error:") or lines[0].startswith("dsatgo: error:"), err
    assert flag in lines[0] and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_dsatgo_export_checks_the_same_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _exit_code(export_main, ["m.pt", "--input-bits", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == ("dsatgo-export: error: argument --input-bits: must be >= 2, got 1 "
                                         "(range 2 to 24) (see --help)")
    assert list(tmp_path.iterdir()) == []


def test_table_covers_every_command():
    assert {argv[0] for argv, _ in ROWS} == {"train", "export", "sim", "parity", "report", "demo"}
    assert len(ROWS) >= 25
