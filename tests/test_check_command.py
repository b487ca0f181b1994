"""ginlight-check and the check at the start of ginlight-train, as real commands in subprocesses."""

from __future__ import annotations

import subprocess

import pytest

from conftest import ginlight_train, run_dirs
from documented_configs import check_command, write_documented

pytestmark = pytest.mark.slow


def test_every_config_the_readme_and_docs_write_out_passes_the_strict_check(tmp_path):
    commands = write_documented(tmp_path)
    assert len(commands) >= 5  # my.gin, line.gin (twice), bert.gin, boring.gin
    for args in commands:
        result = subprocess.run(check_command(*args), cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{args}\n{result.stderr}"
        assert result.stdout.startswith("ginlight-check: 0 error(s), 0 warning(s)"), result.stdout


def test_ginlight_train_warns_of_a_scope_typo_and_its_operative_config_passes_strictly(tmp_path):
    write_documented(tmp_path)
    my = (tmp_path / "my.gin").read_text()
    lines = len(my.splitlines())
    (tmp_path / "typo.gin").write_text(my + "trian/ginlight.data.digits.seed = 3\nTrainer.max_epochs = 1\n"
                                       "Trainer.limit_train_batches = 2\nTrainer.limit_val_batches = 1\n")
    result = ginlight_train("--gin_file=typo.gin", "--root_dir=runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warning = f"warning: typo.gin:{lines + 1}: 'trian/ginlight.data.digits.seed' is bound in scope 'trian'"
    assert warning in result.stderr
    assert "Did you mean 'train/'?" in result.stderr
    (run_dir,) = run_dirs(tmp_path / "runs")  # what the run called, defaults and ginlight's own calls included
    result = subprocess.run(check_command(f"--gin_file={run_dir / 'operative_config.gin'}"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_ginlight_train_leaves_no_run_directory_on_a_type_error(tmp_path):
    write_documented(tmp_path)
    my = (tmp_path / "my.gin").read_text()
    lines = len(my.splitlines())
    (tmp_path / "wrong.gin").write_text(my + "DataLoader.batch_size = 32.0\n")
    result = ginlight_train("--gin_file=wrong.gin", "--root_dir=wrong-runs", cwd=tmp_path)
    assert result.returncode == 2
    assert (f"ginlight-train: error: wrong.gin:{lines + 1}: 'DataLoader.batch_size' is bound to the float 32.0, "
            "but it takes int or None.") in result.stderr
    assert not (tmp_path / "wrong-runs").exists()
