"""The command line: each command end to end, and one clear line plus exit 2 for bad input."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from taskspace.cli import main


def _error_line(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert "\n" not in error, error
    assert error.startswith("taskspace: error: ")
    return error


def test_tasks_prints_the_default_space(capsys):
    assert main(["tasks"]) == 0
    lines = capsys.readouterr().out.split()
    assert len(lines) == 15 and "cat_vs_dog" in lines


def test_tasks_of_the_digits_space_and_of_a_file(tmp_path, capsys):
    assert main(["tasks", "--space", "digits"]) == 0
    assert len(capsys.readouterr().out.split()) == 15
    space = tmp_path / "space.toml"
    space.write_text('classes = ["airplane", "bird", "frog"]\n')
    assert main(["tasks", "--space", str(space)]) == 0
    assert capsys.readouterr().out.split() == ["airplane_vs_bird", "airplane_vs_frog", "bird_vs_frog"]


def test_python_dash_m_runs():
    result = subprocess.run([sys.executable, "-m", "taskspace", "tasks", "--space", "digits"],
                            capture_output=True, text=True, check=True)
    assert "0_vs_1" in result.stdout


def test_train_writes_metrics_and_config_from_toml(tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text('dataset = "digits"\nepochs = 2\nseed = 3\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--task", "3_vs_8", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    resolved = json.loads((out / "config.json").read_text())["config"]
    assert resolved["epochs"] == 2 and resolved["seed"] == 3 and resolved["dataset"] == "digits"
    assert "test accuracy" in capsys.readouterr().out


def test_train_objective_param_flag_overrides_the_toml(tmp_path):
    config = tmp_path / "train.toml"
    config.write_text('dataset = "digits"\nepochs = 1\nobjective = "supervised_contrastive"\n'
                      'objective_params = { temperature = 0.5 }\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--task", "3_vs_8", "--out", str(out), "--quiet",
                 "--objective-param", "temperature=0.05"]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["objective_params"] == {"temperature": 0.05}


def test_objective_param_flag_needs_name_and_number(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--task", "3_vs_8", "--out", "x", "--objective-param", "temperature"])
    assert exit_info.value.code == 2
    assert "expected NAME=NUMBER" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--task", "atuomobile_vs_truck"], "did you mean 'automobile'"),
        (["--task", "cat_vs_cat"], "twice"),
        (["--task", "cat_vs_dog", "--epochs", "-3"], "epochs must be an integer >= 1"),
        (["--task", "cat_vs_dog", "--mode", "finetune"], "--init-from"),
        (["--task", "3_vs_8", "--dataset", "digits", "--labels-per-class", "100000"], "more than the"),
        (["--task", "3_vs_8", "--dataset", "digitz"], "did you mean 'digits'"),
        (["--task", "3_vs_8", "--dataset", "digits", "--objective", "supervised_contrastive",
          "--objective-param", "temprature=0.1"], "has no parameter 'temprature'"),
        (["--task", "3_vs_8", "--dataset", "digits", "--objective-param", "temperature=0.1"],
         "objective 'upper_tri_alignment' has no parameter 'temperature'"),
    ],
)
def test_train_bad_input_gives_one_line_and_exit_2(tmp_path, capsys, arguments, message):
    out = tmp_path / "run"
    assert main(["train", *arguments, "--out", str(out), "--quiet"]) == 2
    assert message in _error_line(capsys)
    assert not (out / "model.pt").exists() and not (out / "metrics.json").exists()


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["train", "--task", "3_vs_8", "--dataset", "digits", "--out", str(blocker / "run")]) == 2
    assert "cannot write to output folder" in _error_line(capsys)


def test_finetune_from_a_checkpoint_of_another_architecture(tmp_path, capsys):
    source = tmp_path / "source"
    assert main(["train", "--task", "3_vs_8", "--dataset", "digits", "--epochs", "1", "--out", str(source),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["train", "--task", "3_vs_8", "--dataset", "digits", "--mode", "finetune", "--architecture",
                 "small_cnn", "--init-from", str(source / "model.pt"), "--out", str(tmp_path / "t"),
                 "--quiet"]) == 2
    assert "architecture='digits_cnn'" in _error_line(capsys)


def test_corrupt_checkpoint(tmp_path, capsys):
    broken = tmp_path / "model.pt"
    broken.write_bytes(b"not a checkpoint")
    assert main(["train", "--task", "3_vs_8", "--dataset", "digits", "--mode", "finetune", "--init-from",
                 str(broken), "--out", str(tmp_path / "t"), "--quiet"]) == 2
    assert "cannot be read" in _error_line(capsys)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_data_command_refuses_a_malicious_pickle(tmp_path, capsys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    for name in ["batches.meta", *[f"data_batch_{i}" for i in range(1, 6)], "test_batch"]:
        (folder / name).write_bytes(pickle.dumps(_Exploit(marker), protocol=2))
    assert main(["data", "--data-root", str(tmp_path)]) == 2
    assert "os" in _error_line(capsys) or "system" in capsys.readouterr().err
    assert not marker.exists()


def test_data_command_with_missing_data(tmp_path, capsys):
    assert main(["data", "--data-root", str(tmp_path / "nothing-here")]) == 2
    message = _error_line(capsys)
    assert "--data-root" in message or "TASKSPACE_DATA" in message


def test_data_command_on_real_cifar(cifar_root, capsys):
    assert main(["data", "--data-root", str(cifar_root)]) == 0
    assert "50000 train / 10000 test" in capsys.readouterr().out
