"""The `pdesuite` command line: every subcommand listed and built, bad options refused."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pdesuite.cli import _SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("demo", "generate", "train", "evaluate", "forecast"):
        assert name in out


def test_every_subcommand_is_built_and_an_unknown_option_is_refused(capsys):
    assert set(_SUBCOMMANDS) == {"demo", "generate", "train", "evaluate", "forecast"}
    for command in (["generate", "darcy"], ["train", "fno"],
                    ["forecast", "koopman", "--data", "x.h5", "--out", "run"]):
        with pytest.raises(SystemExit) as exit_info:
            main(command + ["--no-such-option"])
        assert exit_info.value.code == 2
        assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_cli_help_does_not_import_torch():
    code = (
        "import sys; from pdesuite.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_generate_writes_a_dataset(tmp_path):
    out = tmp_path / "d.h5"
    assert main(["generate", "darcy", "--n", "6", "--resolution", "12", "--out", str(out),
                 "--no-progress", "--chunk-size", "3"]) == 0
    from pdesuite.datasets import open_dataset

    with open_dataset(out) as f:
        assert f["inputs"].shape == (6, 1, 12, 12)
        assert f["outputs"].shape == (6, 1, 12, 12)


def test_generate_errors_are_one_line_and_help_lists_exit_statuses(tmp_path, capsys):
    out = tmp_path / "d.h5"
    assert main(["generate", "darcy", "--n", "4", "--resolution", "8", "--out", str(out),
                 "--no-progress", "--rtol", "-1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pdesuite generate: --rtol: ")
    assert not (tmp_path / "d.h5.parts").exists()
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = capsys.readouterr().out
    assert "exit status:" in text and "130" in text and "--debug" in text
