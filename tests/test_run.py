"""The run as one object: identity by content, cells that cannot collide, one writer, nothing half-written,
one line for every error. Each test reproduces a defect a careless or hostile user found, then pins the fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taskspace.cli import build_parser, main
from taskspace.config import GridConfig
from taskspace.errors import TaskspaceError
from taskspace.runner import LAYOUT, Run, TrainCell
from taskspace.runner.run import pair_key

SPACE = 'dataset = "digits"\npairs = [["3", "8"], ["1", "7"], ["0", "6"]]\n'
FAST = ("alignment", "source_accuracy")


def _one_line(capsys) -> str:
    error = capsys.readouterr().err.strip()
    lines = [line for line in error.splitlines() if not line.startswith("taskspace: note:")]
    assert len(lines) == 1 and lines[0].startswith("taskspace: error: "), error
    return lines[0]


def _exit_code(argv) -> int:
    """main's exit code, also when argparse exits on its own (bad option values)."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code)


@pytest.fixture(scope="module")
def scored(tmp_path_factory, session_cache):
    """A scored 3-task digits run (1 epoch) and the space file it was made from."""
    folder = tmp_path_factory.mktemp("scored")
    space = folder / "space.toml"
    space.write_text(SPACE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TASKSPACE_CACHE", str(session_cache))
        run = Run.create(folder / "run", GridConfig(space=str(space), train={"epochs": 1, "seed": 0}))
        run.score(FAST)
    return folder


@pytest.fixture()
def copy(scored, tmp_path):
    shutil.copytree(scored, tmp_path / "made")
    return tmp_path / "made"


# Identity by content ------------------------------------------------------------------------------------


def test_an_edited_space_file_at_the_same_path_is_refused_naming_what_differs(copy, capsys) -> None:
    space, run = copy / "space.toml", copy / "run"
    space.write_text(SPACE.replace('["0", "6"]', '["0", "9"]'))
    assert main(["matrix", str(run), "--space", str(space), "--estimators", "alignment", "--quiet"]) == 2
    error = _one_line(capsys)
    assert "tasks only here: 0_vs_6" in error and "tasks only there: 0_vs_9" in error
    assert json.loads((run / "run.json").read_text())["space_ids"] == ["3_vs_8", "1_vs_7", "0_vs_6"]
    assert sorted(path.name for path in (run / "zoo").iterdir()) == ["0_vs_6", "1_vs_7", "3_vs_8"]


def test_a_changed_dataset_or_group_is_named(copy) -> None:
    from taskspace.tasks import TaskSpace

    recorded = Run.open(copy / "run").space
    other = TaskSpace.from_record({**recorded.to_record(), "groups": [["round", ["3", "8", "0", "6"]]]})
    assert any("class groups" in item for item in recorded.differences(other))
    moved = TaskSpace.from_record({**recorded.to_record(), "dataset": "cifar10"})
    assert recorded.differences(moved) == ["dataset 'digits' vs 'cifar10'"]


def test_a_respelled_or_copied_space_file_reopens_the_run(copy, tmp_path, monkeypatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(copy / "space.toml", elsewhere / "renamed.toml")
    monkeypatch.chdir(copy)
    for spelling in ("./space.toml", "space.toml", str(elsewhere / "renamed.toml")):
        assert main(["matrix", "run", "--space", spelling, "--estimators", "alignment", "--quiet"]) == 0


def test_a_run_made_with_a_relative_path_works_from_any_folder(tmp_path, monkeypatch) -> None:
    made = tmp_path / "made"
    made.mkdir()
    (made / "space.toml").write_text(SPACE)
    monkeypatch.chdir(made)
    assert main(["matrix", "run", "--space", "space.toml", "--epochs", "1", "--estimators", "alignment",
                 "--quiet"]) == 0
    (made / "space.toml").unlink()  # the run no longer needs the file it was made from
    monkeypatch.chdir(tmp_path)
    assert main(["recommend", "made/run", "--target", "3_vs_8", "--k", "1"]) == 0
    assert main(["matrix", "made/run", "--estimators", "alignment,source_accuracy", "--quiet"]) == 0


def test_a_space_with_groups_reopens_through_its_record(tmp_path) -> None:
    """The groups keep their order through run.json (whose keys are written sorted)."""
    space = tmp_path / "space.toml"
    space.write_text(SPACE + '\n[groups]\nzeta = ["3", "8"]\nalpha = ["1", "7"]\nmid = ["0", "6"]\n')
    grid = GridConfig(space=str(space), train={"epochs": 1, "seed": 0})
    created = Run.create(tmp_path / "run", grid)
    assert Run.create(tmp_path / "run", grid).space == created.space == Run.open(tmp_path / "run").space
    assert created.space.group_names == ("zeta", "alpha", "mid")


def test_the_identity_hash_covers_content_not_names() -> None:
    from taskspace.runner.run import run_identity
    from taskspace.tasks import TaskSpace

    space = TaskSpace.from_record({"dataset": "digits", "tasks": [["3", "8"], ["1", "7"]]})
    assert run_identity(GridConfig(space="a.toml"), space) == run_identity(GridConfig(space="b/c.toml"), space)
    assert run_identity(GridConfig(seed=1), space) != run_identity(GridConfig(seed=0), space)


def test_a_hand_edited_record_is_refused(copy) -> None:
    record_file = copy / "run" / "run.json"
    record = json.loads(record_file.read_text())
    record["space"]["tasks"][0] = ["3", "9"]
    record_file.write_text(json.dumps(record))
    with pytest.raises(TaskspaceError, match="does not match its own identity"):
        Run.open(copy / "run")


def test_a_format_1_run_is_upgraded_and_keeps_its_cells(copy) -> None:
    run = Run.open(copy / "run")
    # Rewrite the run as the previous version left it: space by path, cells named source__target.
    record = json.loads(run.path("record").read_text())
    old = {"grid": record["grid"], "grid_hash": record["grid_hash"], "space_ids": record["space_ids"],
           "dataset": record["dataset"], "taskspace_version": "0.1.0"}
    run.path("record").write_text(json.dumps(old))
    for source in run.space.ids:
        for target in run.space.ids:
            cell = json.loads(run.score_file(source, target).read_text())
            del cell["source"], cell["target"]
            (run.path("scores") / f"{source}__{target}.json").write_text(json.dumps(cell))
            run.score_file(source, target).unlink()
    reopened = Run.open(copy / "run")
    assert json.loads(reopened.path("record").read_text())["format"] == 2
    stamps = {path.name: path.stat().st_mtime_ns for path in reopened.path("scores").iterdir()}
    assert len(stamps) == 9 and all("__" not in name for name in stamps)
    reopened.score(FAST)  # nothing to compute again
    assert {path.name: path.stat().st_mtime_ns for path in reopened.path("scores").iterdir()} == stamps


# Cells that cannot collide ------------------------------------------------------------------------------


def _image_folder(root: Path, classes: list[str], *, train: int = 16, test: int = 6) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for code, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                pixels = np.clip(rng.normal(30 * code, 20, size=(8, 8, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{index}.png")


def test_class_names_with_the_old_separator_never_share_a_cell_file(tmp_path) -> None:
    classes = ["a", "b", "b__c", "c__d", "d", "e"]
    _image_folder(tmp_path / "images", classes)
    space = tmp_path / "space.toml"
    space.write_text(f'dataset = "{tmp_path / "images"}"\n'
                     'pairs = [["a", "b"], ["c__d", "e"], ["a", "b__c"], ["d", "e"]]\n')
    # "a_vs_b" + "__" + "c__d_vs_e" == "a_vs_b__c" + "__" + "d_vs_e": the old names collided
    assert pair_key("a_vs_b", "c__d_vs_e") != pair_key("a_vs_b__c", "d_vs_e")
    run = Run.create(tmp_path / "run", GridConfig(space=str(space), train={
        "epochs": 1, "seed": 0, "architecture": "digits_cnn", "batch_size": 16}))
    matrices = run.score(("source_accuracy", "alignment"))
    files = list(run.path("scores").glob("*.json"))
    assert len(files) == 16
    assert {(json.loads(f.read_text())["source"], json.loads(f.read_text())["target"]) for f in files} == {
        (s, t) for s in run.space.ids for t in run.space.ids}
    accuracy = {s: run.source_metrics(s)["test_accuracy"] for s in run.space.ids}
    for source in run.space.ids:  # every cell reports its own source's score
        assert matrices["source_accuracy"].scores[run.space.ids.index(source)] == pytest.approx(accuracy[source])


def test_a_cell_file_of_another_pair_is_not_taken_for_this_one(copy) -> None:
    run = Run.open(copy / "run")
    first, second = run.score_file("3_vs_8", "1_vs_7"), run.score_file("1_vs_7", "3_vs_8")
    shutil.copyfile(second, first)
    assert run.read_cell(first, "3_vs_8", "1_vs_7") is None
    stamp = run.score(FAST)["alignment"].score("3_vs_8", "1_vs_7")
    assert json.loads(first.read_text())["source"] == "3_vs_8" and np.isfinite(stamp)



def test_scoring_other_estimators_keeps_the_matrices_already_written(copy) -> None:
    run = Run.open(copy / "run")
    before = run.estimates()
    run.score(("kernel_ridge_r2",))
    after = run.estimates()
    assert set(after) == set(before) | {"kernel_ridge_r2"}
    for name, matrix in before.items():
        np.testing.assert_array_equal(after[name].scores, matrix.scores)
    assert "kernel_ridge_r2" in (copy / "run" / "matrix.csv").read_text()

# One writer, and zoo nets that must check out -----------------------------------------------------------


_HOLDER = """
import os, sys, time
from pathlib import Path
from taskspace.runner.folder import holding_lock
folder = Path(sys.argv[1])
with holding_lock(folder, folder / sys.argv[2]):
    print("held", flush=True)
    if sys.argv[3] == "die":
        os._exit(0)  # ends without releasing anything by hand: the kernel releases the lock
    time.sleep(60)
"""


def test_a_live_writer_holds_the_run(copy, capsys) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(copy / "run"), LAYOUT["lock"], "sleep"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(["matrix", str(copy / "run"), "--estimators", "alignment", "--quiet"]) == 2
        assert f"being written by another process (pid {holder.pid}" in _one_line(capsys)
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_that_died_leaves_no_lock_behind(copy, capsys) -> None:
    # its owner note stays on disk, but the kernel released the lock when the process ended
    subprocess.run([sys.executable, "-c", _HOLDER, str(copy / "run"), LAYOUT["lock"], "die"], check=True)
    assert (copy / "run" / (LAYOUT["lock"] + ".json")).is_file()
    assert main(["matrix", str(copy / "run"), "--estimators", "alignment", "--quiet"]) == 0
    assert not (copy / "run" / (LAYOUT["lock"] + ".json")).exists()


def test_a_zoo_net_is_reused_only_when_it_checks_out(copy) -> None:
    run = Run.open(copy / "run")
    cell = TrainCell("3_vs_8")
    assert cell.is_done(run)
    run.checkpoint("3_vs_8").unlink()
    assert not cell.is_done(run)
    run.train_zoo()
    assert cell.is_done(run) and run.checkpoint("3_vs_8").is_file()
    run.checkpoint("1_vs_7").write_bytes(b"damaged")
    assert not TrainCell("1_vs_7").is_done(run)
    config = run.source_dir("0_vs_6") / "config.json"
    record = json.loads(config.read_text())
    record["config_hash"] = "another"
    config.write_text(json.dumps(record))
    assert not TrainCell("0_vs_6").is_done(run)


def test_train_rerun_after_the_model_was_deleted_trains_again(tmp_path) -> None:
    out = tmp_path / "net"
    command = ["train", "--task", "3_vs_8", "--dataset", "digits", "--epochs", "1", "--out", str(out), "--quiet"]
    assert main(command) == 0
    (out / "model.pt").unlink()
    assert main(command) == 0
    assert (out / "model.pt").is_file()


# Nothing written before every input is checked ----------------------------------------------------------


@pytest.mark.parametrize("options", [["--estimators", "alignmnet"], ["--executor", "dask"], ["--workers", "0"],
                                     ["--seed", "-1"], ["--space", "nowhere.toml"], ["--score-samples", "0"]])
def test_a_rejected_matrix_command_writes_nothing(tmp_path, capsys, options) -> None:
    folder = tmp_path / "run"
    assert _exit_code(["matrix", str(folder), "--quiet", *options]) == 2
    _one_line(capsys)
    assert not folder.exists()


def test_a_rejected_train_command_leaves_no_config_behind(tmp_path, capsys) -> None:
    out = tmp_path / "net"
    base = ["train", "--task", "3_vs_8", "--dataset", "digits", "--epochs", "1", "--out", str(out), "--quiet"]
    assert main([*base, "--labels-per-class", "100000"]) == 2
    _one_line(capsys)
    assert not (out / "config.json").exists()
    assert main([*base, "--labels-per-class", "5"]) == 0  # the corrected command is not refused


def test_an_output_folder_inside_an_image_folder_dataset_is_refused(tmp_path, capsys) -> None:
    _image_folder(tmp_path / "images", ["a", "b"])
    before = sorted(path.relative_to(tmp_path) for path in (tmp_path / "images").rglob("*"))
    assert main(["train", "--task", "a_vs_b", "--dataset", str(tmp_path / "images"), "--epochs", "1",
                 "--architecture", "digits_cnn", "--out", str(tmp_path / "images" / "train" / "zoo")]) == 2
    assert "inside the dataset" in _one_line(capsys)
    space = tmp_path / "space.toml"
    space.write_text(f'dataset = "{tmp_path / "images"}"\nclasses = ["a", "b"]\n')
    assert main(["matrix", str(tmp_path / "images" / "run"), "--space", str(space), "--quiet"]) == 2
    assert "inside the dataset" in _one_line(capsys)
    assert sorted(path.relative_to(tmp_path) for path in (tmp_path / "images").rglob("*")) == before


# One line for every error -------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["structure", "RUN", "--threshold", "nan"],
    ["evaluate", "RUN", "--resamples", "-1"],
    ["similarity", "RUN", "--seed", "-1"],
    ["recommend", "RUN", "--target", "3_vs_8", "--k", "0"],
])
def test_bad_numbers_are_one_line(copy, capsys, argv) -> None:
    argv = [str(copy / "run") if part == "RUN" else part for part in argv]
    assert _exit_code(argv) == 2
    message = _one_line(capsys)
    assert "Traceback" not in message and argv[-2] in message


@pytest.mark.parametrize(("accuracy", "shown"), [("7.5", "'7.5' is not a number in [0, 1]"), ("nan", "'nan' is not a number in")])
def test_an_out_of_range_truth_is_refused_naming_the_file(copy, capsys, accuracy, shown) -> None:
    run = Run.open(copy / "run")
    run.write_truth([{"source": s, "target": t, "protocol": "frozen_all", "accuracy": 0.9, "diagonal": s == t}
                     for s in run.space.ids for t in run.space.ids])
    text = run.path("truth").read_text().splitlines()
    text[2] = text[2].replace("0.9", accuracy)
    run.path("truth").write_text("\n".join(text) + "\n")
    assert main(["evaluate", str(run.folder)]) == 2
    message = _one_line(capsys)
    assert "truth.csv' line 3" in message and shown in message and f"taskspace truth {run.folder}" in message


def test_evaluate_without_truth_keeps_a_good_verdict(copy, capsys) -> None:
    run = Run.open(copy / "run")
    run.path("verdict").write_text("estimator,protocol,kendall_tau,kendall_tau_low,kendall_tau_high\n")
    before = run.path("verdict").read_bytes()
    assert main(["evaluate", str(run.folder)]) == 2
    assert "no ground truth" in _one_line(capsys)
    assert run.path("verdict").read_bytes() == before


@pytest.mark.parametrize("damage", ["matrix.json", "run.json", "evaluation.csv"])
def test_damaged_results_are_one_line_naming_the_file(copy, capsys, damage) -> None:
    run = copy / "run"
    (run / damage).write_text("estimator,protocol\nx,y,z,w\n" if damage.endswith(".csv") else "{not json")
    assert main(["structure", str(run)]) == 2
    assert damage in _one_line(capsys)


def test_damaged_zoo_files_are_trained_again_by_matrix(copy) -> None:
    run = Run.open(copy / "run")
    (run.source_dir("3_vs_8") / "metrics.json").write_text("{not json")
    run.checkpoint("1_vs_7").write_bytes(b"damaged")
    run.score(FAST)
    assert run.source_metrics("3_vs_8")["test_accuracy"] > 0
    assert TrainCell("1_vs_7").is_done(run)


def test_a_damaged_score_cell_is_computed_again(copy) -> None:
    run = Run.open(copy / "run")
    path = run.score_file("3_vs_8", "0_vs_6")
    cell = json.loads(path.read_text())
    cell["scores"]["alignment"] = "high"
    path.write_text(json.dumps(cell))
    assert np.isfinite(run.score(FAST)["alignment"].score("3_vs_8", "0_vs_6"))


def test_a_feature_cache_of_the_wrong_width_is_recomputed(copy) -> None:
    from taskspace.features import cached_source_outputs
    from taskspace.io import write_npz

    run = Run.open(copy / "run")
    split = run.splits("3_vs_8").test
    first = cached_source_outputs(run.checkpoint("1_vs_7"), split, cache_dir=run.path("features"))
    for path in run.path("features").glob("*.npz"):
        write_npz(path, {"features": np.zeros((len(split), 3), np.float32), "logits": first.logits,
                         "labels": first.labels, "pre_activations": first.pre_activations})
    again = cached_source_outputs(run.checkpoint("1_vs_7"), split, cache_dir=run.path("features"))
    assert np.array_equal(again.features, first.features)


def test_a_folder_given_as_a_file_and_a_file_as_a_folder(copy, tmp_path, capsys) -> None:
    assert main(["train", "--task", "3_vs_8", "--dataset", "digits", "--mode", "finetune", "--init-from",
                 str(copy / "run"), "--out", str(tmp_path / "t"), "--quiet"]) == 2
    assert "is a folder" in _one_line(capsys)
    assert main(["structure", str(copy / "space.toml")]) == 2
    assert "is not a folder" in _one_line(capsys)


def test_an_unforeseen_error_is_one_line_and_debug_shows_it(copy, capsys, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr("taskspace.structure.of_run.run_structure", broken)
    assert main(["structure", str(copy / "run")]) == 2
    message = _one_line(capsys)
    assert "unexpected RuntimeError: something unforeseen" in message and "--debug" in message
    with pytest.raises(RuntimeError):
        main(["--debug", "structure", str(copy / "run")])


def test_an_unwritable_place_is_one_line(copy, capsys, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(copy / "run" / "structure"))

    monkeypatch.setattr("taskspace.structure.of_run.export_graph", refuse)
    assert main(["structure", str(copy / "run")]) == 2
    assert "Permission denied" in _one_line(capsys)


# Messages whose fix exists --------------------------------------------------------------------------------


def test_typos_are_answered_with_did_you_mean(copy, capsys) -> None:
    assert _exit_code(["matirx", str(copy / "run")]) == 2
    assert "did you mean 'matrix'" in _one_line(capsys)
    assert _exit_code(["train", "--task", "3_vs_8", "--out", "x", "--cuts", "2"]) == 2
    assert "did you mean '--cut-points'" in _one_line(capsys)
    assert main(["structure", str(copy / "run"), "--estimator", "alignmnet"]) == 2
    message = _one_line(capsys)
    assert "did you mean 'alignment'" in message and "--estimators alignmnet" not in message


def test_every_flag_a_message_suggests_exists() -> None:
    """Each ``--flag`` in a string of the package is an option of some command."""
    import re

    parser = build_parser()
    known = {option for action in parser._actions for option in action.option_strings}
    for action in parser._actions:
        for sub in getattr(action, "choices", None) and action.choices.values() or ():
            known |= {option for sub_action in sub._actions for option in sub_action.option_strings}
    package = Path(__file__).parent.parent / "taskspace"
    named = set()
    for path in package.rglob("*.py"):
        if path.name == "local_cluster.py":  # passes the flags of `ray start`, not taskspace's
            continue
        named |= set(re.findall(r"(--[a-z][a-z-]*[a-z])(?![\w-])", path.read_text(encoding="utf-8")))
    assert named - known - {"--debug"} == set(), "messages name flags that no command has"


class Payload:
    """An object a checkpoint may carry, which loading with weights_only refuses."""


def test_no_message_advises_turning_weights_only_off(tmp_path, capsys) -> None:
    import torch

    path = tmp_path / "model.pt"
    torch.save({"payload": Payload()}, path)
    assert main(["train", "--task", "3_vs_8", "--dataset", "digits", "--mode", "finetune", "--init-from", str(path),
                 "--out", str(tmp_path / "t"), "--quiet"]) == 2
    message = _one_line(capsys)
    assert "weights_only" not in message and "never unpickles" in message


# The layout's one owner -----------------------------------------------------------------------------------


def test_run_folder_file_names_are_written_only_in_the_layout_module() -> None:
    import re

    package = Path(__file__).parent.parent / "taskspace"
    names = {Path(value).name for value in LAYOUT.values() if "." in Path(value).name}
    assert {"run.json", "truth.csv", "evaluation.csv", "run.lock"} <= names
    for path in package.rglob("*.py"):
        if path.name == "folder.py" and path.parent.name == "runner":
            continue
        literals = set(re.findall(r"[\"']([\w.-]+\.(?:json|csv|lock|npz))[\"']", path.read_text(encoding="utf-8")))
        assert not literals & names, f"{path} names {literals & names}"


def test_no_command_function_is_longer_than_60_lines() -> None:
    import ast

    folder = Path(__file__).parent.parent / "taskspace" / "cli"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno + 1 <= 60, f"{path.name}:{node.name}"


# The zoo's training options and device, from the command line ---------------------------------------------


def test_a_train_config_sets_how_every_source_trains(tmp_path, session_cache, monkeypatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(session_cache))
    (tmp_path / "space.toml").write_text(SPACE)
    (tmp_path / "train.toml").write_text('[train]\nwidth = 8\nbatch_size = 16\nprecision = "fp32"\n')
    argv = ["matrix", str(tmp_path / "run"), "--space", str(tmp_path / "space.toml"), "--epochs", "1",
            "--train-config", str(tmp_path / "train.toml"), "--estimators", "alignment", "--quiet"]
    assert main([*argv, "--device", "cpu"]) == 0
    run = Run.open(tmp_path / "run")
    assert run.grid.train == {"epochs": 1, "seed": 0, "width": 8, "batch_size": 16, "precision": "fp32",
                              "device": "cpu"}
    config = json.loads((run.source_dir("3_vs_8") / "config.json").read_text())["config"]
    assert config["width"] == 8 and config["batch_size"] == 16
    # the device is where the zoo trains, not what it is: the run reopens under another
    assert run.identity == Run.open(tmp_path / "run").identity
    assert main([*argv, "--device", "auto"]) == 0


@pytest.mark.parametrize(("train_toml", "extra", "message"), [
    ("widht = 8\n", [], "unknown option 'widht'"),
    ('precision = "fp16"\n', [], "unknown precision 'fp16'"),
    ("mode = \"e2e\"\n", [], "must not set task or mode"),
    ("", ["--device", "cuda"], "no CUDA GPU is available"),
])
def test_bad_training_options_of_a_grid_are_one_line_and_write_nothing(tmp_path, capsys, train_toml, extra,
                                                                       message) -> None:
    if "cuda" in extra:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is here")
    (tmp_path / "space.toml").write_text(SPACE)
    (tmp_path / "train.toml").write_text(train_toml)
    argv = ["matrix", str(tmp_path / "run"), "--space", str(tmp_path / "space.toml"), "--train-config",
            str(tmp_path / "train.toml"), *extra, "--quiet"]
    assert _exit_code(argv) == 2
    assert message in _one_line(capsys)
    assert not (tmp_path / "run").exists()
