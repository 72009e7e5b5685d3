"""Generation keeps every run safe: options checked before anything is written, failed solves
reported loudly, Ctrl-C ends with one line and a resume, user errors are one line."""

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import pdesuite.datasets.generation.workers as workers_module
from pdesuite.datasets.pde_family import FAMILIES
from pdesuite.datasets.generation import FailedSolvesWarning, cli_generate, generate
from pdesuite.datasets.generation.cli import EXIT_FAILED_SOLVES, EXIT_INTERRUPTED, cli_message
from tests.datasets.test_generate import (
    TinyDiffusion,
    _arrays,
    _assert_bitwise_equal,
    wait_for_blocks,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_registered():
    FAMILIES[TinyDiffusion.name] = TinyDiffusion
    yield TinyDiffusion.name
    del FAMILIES[TinyDiffusion.name]


def _darcy_args(out):
    return ["darcy", "--n", "4", "--resolution", "8", "--out", str(out), "--no-progress"]


def _one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# ---- options are checked before anything is written --------------------------------------


@pytest.mark.parametrize("bad, flag", [
    (["--rtol", "-1"], "--rtol"),
    (["--method", "foo"], "--method"),
    (["--pc", "foo"], "--pc"),
    (["--maxiter", "0"], "--maxiter"),
    (["--solver", "independent", "--restart", "-2"], "--restart"),
    (["--method", "cg", "--restart", "10"], "--restart"),  # an option cg does not take
    (["--solver", "recycle", "--restart", "10"], "--restart"),  # rcg's is --ell
])
def test_bad_solver_option_leaves_nothing_and_the_corrected_command_runs(tmp_path, capsys, bad,
                                                                          flag):
    out = tmp_path / "d.h5"
    assert cli_generate(_darcy_args(out) + bad) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"pdesuite generate: {flag}: "), line
    assert not out.exists() and not (tmp_path / "d.h5.parts").exists()
    assert list(tmp_path.iterdir()) == []
    # The corrected command is not taken for a partial run of another configuration.
    assert cli_generate(_darcy_args(out)) == 0
    assert out.exists() and not (tmp_path / "d.h5.parts").exists()


@pytest.mark.parametrize("solver, match", [
    ({"method": "cg", "rtol": -1}, "solver: rtol"),
    ({"method": "foo"}, "solver: method: unknown method 'foo'"),
    ({"method": "cg", "M": "nope"}, "solver: M: 'nope' is neither a preconditioner name"),
    ({"method": "cg", "colour": "red"}, r"unknown option\(s\) \['colour'\]"),
    ({"method": "direct", "maxiter": -1}, "solver: maxiter"),
    ({"method": "auto", "rtol": -1}, "solver: rtol"),
])
def test_generate_checks_the_solver_before_it_writes(tmp_path, solver, match):
    family = TinyDiffusion(6)
    out = tmp_path / "a.h5"
    with pytest.raises(ValueError, match=match):
        generate(family, 8, out, solver=solver, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_before_the_first_block_removes_only_the_parts_it_created(tmp_path):
    family = TinyDiffusion(6)
    shift0 = float(family.sample(np.random.default_rng([0, 0]))["shift"])
    failing = TinyDiffusion(6, fail_at=shift0)
    out = tmp_path / "f.h5"
    with pytest.raises(RuntimeError, match="on purpose"):
        generate(failing, 4, out, order="given", chunk_size=2, progress=False)
    assert list(tmp_path.iterdir()) == []  # only the plan had been written: removed
    # A parts folder that was there before the run is never removed by it.
    parts = tmp_path / "f.h5.parts"
    parts.mkdir()
    (parts / "note.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="on purpose"):
        generate(failing, 4, out, order="given", chunk_size=2, progress=False)
    assert (parts / "note.txt").read_text() == "mine"


# ---- failed solves are loud ---------------------------------------------------------------


def test_a_dataset_of_failed_solves_warns_and_the_command_exits_2(tmp_path, capsys):
    out = tmp_path / "h.h5"
    solver = {"method": "cg", "maxiter": 5}  # CG on indefinite Helmholtz: every solve fails
    with pytest.warns(FailedSolvesWarning, match=r"6 of 6 samples did not converge") as record:
        generate("helmholtz", 6, out, solver=solver, progress=False, resolution=16)
    message = str(record[0].message)
    assert issubclass(FailedSolvesWarning, UserWarning)
    assert str(out) in message and "solver/converged is False" in message and "maxiter" in message
    assert _arrays(out)["solver/converged"].sum() == 0  # kept and flagged, not dropped
    # Asking again for the finished file says it again.
    with pytest.warns(FailedSolvesWarning, match="6 of 6"):
        generate("helmholtz", 6, out, solver=solver, progress=False, resolution=16)

    cli_out = tmp_path / "cli.h5"
    code = cli_generate(["helmholtz", "--n", "6", "--resolution", "16", "--out", str(cli_out),
                         "--no-progress", "--solver", "independent", "--method", "cg",
                         "--maxiter", "5"])
    captured = capsys.readouterr()
    assert code == EXIT_FAILED_SOLVES == 2
    assert "not converged 6" in captured.out
    line = _one_line(captured.err)
    assert line.startswith(f"pdesuite generate: {cli_out}: 6 of 6 samples did not converge")
    assert "--maxiter" in line and "maxiter=" not in line


def test_a_converged_dataset_does_not_warn(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FailedSolvesWarning)
        generate(TinyDiffusion(6), 4, tmp_path / "ok.h5", progress=False)


# ---- Ctrl-C --------------------------------------------------------------------------------


def _interrupt_at_block(monkeypatch, victim):
    real = workers_module.run_block

    def run_block(plan, block, *args, **kwargs):
        if block == victim:
            raise KeyboardInterrupt
        return real(plan, block, *args, **kwargs)

    monkeypatch.setattr(workers_module, "run_block", run_block)


def test_ctrl_c_is_one_line_with_the_resume_and_the_rerun_completes(tmp_path, capsys, monkeypatch,
                                                                   tiny_registered):
    args = [tiny_registered, "--n", "8", "--resolution", "6", "--chunk-size", "2",
            "--order", "given", "--solver", "recycle", "--no-progress"]
    reference = tmp_path / "ref.h5"
    assert cli_generate(args + ["--out", str(reference)]) == 0
    out = tmp_path / "d.h5"
    parts = tmp_path / "d.h5.parts"
    with monkeypatch.context() as patch:
        _interrupt_at_block(patch, 2)
        capsys.readouterr()
        assert cli_generate(args + ["--out", str(out)]) == EXIT_INTERRUPTED == 130
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert "Traceback" not in captured.err and captured.out == ""
    assert "2 finished block(s) are kept" in line and str(parts) in line
    assert "rerun the same command to resume" in line
    assert sorted(p.name for p in parts.glob("block_*")) == ["block_000000.h5", "block_000001.h5"]
    with open(parts / "lock", "a+") as lock:  # the lock was released
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert cli_generate(args + ["--out", str(out)]) == 0
    _assert_bitwise_equal(_arrays(reference), _arrays(out))
    assert not parts.exists()


def test_ctrl_c_with_overwrite_and_debug(tmp_path, capsys, monkeypatch, tiny_registered):
    out = tmp_path / "d.h5"
    args = [tiny_registered, "--n", "4", "--resolution", "6", "--chunk-size", "2", "--no-progress",
            "--out", str(out), "--overwrite"]
    with monkeypatch.context() as patch:
        _interrupt_at_block(patch, 0)
        assert cli_generate(args) == 130
        line = _one_line(capsys.readouterr().err)
        # Nothing was finished, and nothing is left behind.
        assert "before any block was finished" in line and "without --overwrite" in line
        assert not (tmp_path / "d.h5.parts").exists()
        assert cli_generate(args + ["--debug"]) == 130
        err = capsys.readouterr().err
    assert "Traceback" in err and "KeyboardInterrupt" in err
    assert err.strip().splitlines()[-1].startswith("pdesuite generate: interrupted")


_SIGINT_RUN = textwrap.dedent("""
    import sys
    from tests.datasets.test_generate import TinyDiffusion
    from pdesuite.cli import main
    from pdesuite.datasets.pde_family import FAMILIES
    if __name__ == "__main__":
        FAMILIES[TinyDiffusion.name] = TinyDiffusion
        raise SystemExit(main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_a_real_ctrl_c_with_two_workers_prints_one_line(tmp_path):
    """SIGINT to the whole process group, as a terminal sends it: workers print nothing."""
    script = tmp_path / "run.py"
    script.write_text(_SIGINT_RUN)
    out = tmp_path / "s.h5"
    parts = tmp_path / "s.h5.parts"
    command = [sys.executable, str(script), "generate", TinyDiffusion.name, "--n", "24",
               "--resolution", "8", "--chunk-size", "2", "--workers", "2", "--solver", "recycle",
               "--out", str(out), "--no-progress"]
    env = {**os.environ, "TINY_DELAY": "0.05", "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_blocks(process, parts, 2)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    line = _one_line(err)
    assert line.startswith("pdesuite generate: interrupted;") and "rerun the same command" in line
    assert not list(parts.glob("*.tmp"))  # the workers' unfinished shards are gone
    rerun = subprocess.run(command, check=False, cwd=REPO, env={**env, "TINY_DELAY": "0"},
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert out.exists() and not parts.exists()


# ---- user errors are one line --------------------------------------------------------------


def test_user_errors_are_one_line_naming_the_argument_or_file(tmp_path, capsys, tiny_registered):
    out = tmp_path / "d.h5"
    assert cli_generate(_darcy_args(out) + ["--chunk-size", "0"]) == 1
    assert _one_line(capsys.readouterr().err).startswith("pdesuite generate: --chunk-size: ")
    assert cli_generate(["no-such-family", "--out", str(out), "--no-progress"]) == 1
    assert "no-such-family" in _one_line(capsys.readouterr().err)
    assert cli_generate(_darcy_args(out) + ["--set", "colour=1"]) == 1
    assert _one_line(capsys.readouterr().err).startswith("pdesuite generate: --set: ")
    # Another dataset at --out: the message names the file and says --overwrite.
    assert cli_generate(_darcy_args(out)) == 0
    capsys.readouterr()
    assert cli_generate(_darcy_args(out) + ["--seed", "1"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line and "--overwrite" in line and "overwrite=True" not in line
    # A failure inside a block: one line, the error at its end.
    shift = float(TinyDiffusion(6).sample(np.random.default_rng([0, 3]))["shift"])
    code = cli_generate([tiny_registered, "--n", "4", "--resolution", "6",
                         "--out", str(tmp_path / "f.h5"), "--no-progress",
                         "--set", f"fail_at={shift!r}"])
    assert code == 1
    assert "the family failed on purpose" in _one_line(capsys.readouterr().err)
    # --debug shows the traceback, then the same line.
    assert cli_generate(_darcy_args(out) + ["--seed", "1", "--debug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.strip().splitlines()[-1] == line


def test_cli_message_uses_the_words_of_the_command_line():
    assert cli_message(ValueError("solver: rtol: must be >= 0")) == "--rtol: must be >= 0"
    assert cli_message(ValueError("solver: M: unknown preconditioner 'x'")) == \
        "--pc: unknown preconditioner 'x'"
    message = cli_message(ValueError("batch_size: must be an integer >= 1, got 0"))
    assert message.startswith("--batch-size: ")
    assert cli_message(ValueError("a.h5.parts/plan.json: another run; pass overwrite=True")) == \
        "a.h5.parts/plan.json: another run; pass --overwrite"
    assert cli_message(ValueError("backend: use solver='independent'")) == \
        "--backend: use --solver independent"
    worker = RuntimeError("a worker failed:\nTraceback ...\n  File x\nValueError: boom")
    assert cli_message(worker) == "a worker failed: ... ValueError: boom"


def test_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        cli_generate(["--help"])
    text = capsys.readouterr().out
    for status in ("0 ", "1 ", "2 ", "130"):
        assert f"\n  {status}" in text
    assert "--debug" in text


# ---- checksums in generation ----------------------------------------------------------------


def test_a_corrupt_shard_is_named_at_the_merge_and_a_rerun_repairs_it(tmp_path):
    from tests.datasets.test_storage import flip_chunk_byte

    family = TinyDiffusion(6)
    options = {"chunk_size": 2, "order": "given", "progress": False}
    reference = _arrays(generate(family, 6, tmp_path / "ref.h5", **options))
    out = generate(family, 6, tmp_path / "d.h5", keep_parts=True, **options)
    out.unlink()
    shard = tmp_path / "d.h5.parts" / "block_000001.h5"  # samples 2 and 3 in the given order
    flip_chunk_byte(shard, "outputs", 1)
    with pytest.raises(OSError) as error:
        generate(family, 6, out, **options)
    message = str(error.value)
    assert f"{shard}: sample 3 of 'outputs'" in message and f"remove {shard}" in message
    assert not out.exists()
    shard.unlink()
    generate(family, 6, out, **options)
    _assert_bitwise_equal(reference, _arrays(out))
