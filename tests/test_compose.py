"""Modular workflows on the embedded digits: split, drop, port, stack and substitute, and what they refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from taskspace.cli import main
from taskspace.config import TrainConfig
from taskspace.data import load_digits_dataset
from taskspace.training import load_model, train_task
from taskspace.training.tensors import to_tensor_split


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three digits nets cut into 3 modules: two of width 8 on different tasks, one of width 4."""
    folder = tmp_path_factory.mktemp("nets")
    made = {}
    for name, task, width in (("a", "3_vs_8", 8), ("b", "1_vs_7", 8), ("narrow", "0_vs_6", 4)):
        config = TrainConfig(task=task, dataset="digits", width=width, cut_points=(1, 2), epochs=2, seed=0)
        train_task(config, out_dir=folder / name)
        made[name] = folder / name / "model.pt"
    return made


def _compose(*argv: str) -> int:
    return main(["compose", *argv, "--quiet"])


def _probe(path: Path) -> torch.Tensor:
    _, saved = load_model(path)
    dataset = load_digits_dataset()
    split = to_tensor_split(dataset.test, mean=saved["normalization"]["mean"], std=saved["normalization"]["std"],
                            device=torch.device("cpu"))
    return split.images[:64]


def test_split_regroups_the_stages_and_keeps_every_weight(nets, tmp_path) -> None:
    whole, _ = load_model(nets["a"])
    assert _compose("split", "--from", str(nets["a"]), "--cut-points", "2", "--out", str(tmp_path / "s")) == 0
    regrouped, saved = load_model(tmp_path / "s" / "model.pt")
    assert regrouped.num_hidden == 2 and whole.num_hidden == 3
    images = _probe(nets["a"])
    with torch.no_grad():
        torch.testing.assert_close(regrouped(images), whole(images))
    assert saved["composition"]["output_module"] == "kept"
    from taskspace.io import load_checkpoint

    first = load_checkpoint(tmp_path / "s" / "modules" / "module_0.pt")
    assert first["stages"] == [0, 2] and first["provenance"]["from"] == str(nets["a"])
    torch.testing.assert_close(first["state_dict"], regrouped.hidden[0].state_dict())


def test_drop_and_port_keep_the_frozen_modules_and_rebuild_from_the_checkpoint(nets, tmp_path) -> None:
    source, _ = load_model(nets["a"])
    assert _compose("drop", "--from", str(nets["a"]), "--keep", "2", "--out", str(tmp_path / "d")) == 0
    dropped, saved = load_model(tmp_path / "d" / "model.pt")
    assert dropped.num_hidden == 2 and saved["spec"]["depth"] == 2 and dropped.feature_dim == 16
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert metrics["task"] == "3_vs_8" and 0.5 < metrics["test_accuracy"] <= 1.0 and metrics["trained_modules"] == []

    assert _compose("port", "--from", str(nets["a"]), "--keep", "1", "--task", "2_vs_5", "--out", str(tmp_path / "p")) == 0
    ported, saved = load_model(tmp_path / "p" / "model.pt")
    assert saved["task_classes"] == ["2", "5"] and ported.num_hidden == 1
    for mine, theirs in zip(ported.hidden[0].state_dict().values(), source.hidden[0].state_dict().values(), strict=True):
        torch.testing.assert_close(mine, theirs)
    record = saved["composition"]["modules"][0]
    assert record["module"] == 0 and len(record["sha256"]) == 64 and record["from"].endswith("model.pt")


def test_stack_trains_new_modules_on_the_frozen_ones(nets, tmp_path) -> None:
    source, _ = load_model(nets["a"])
    assert _compose("stack", "--from", str(nets["a"]), "--keep", "1", "--task", "2_vs_5", "--epochs", "2",
                    "--out", str(tmp_path / "k")) == 0
    stacked, saved = load_model(tmp_path / "k" / "model.pt")
    metrics = json.loads((tmp_path / "k" / "metrics.json").read_text())
    assert metrics["trained_modules"] == [1, 2] and metrics["test_accuracy"] > 0.8
    torch.testing.assert_close(stacked.hidden[0].state_dict(), source.hidden[0].state_dict())
    assert [m.get("trained_here", False) for m in saved["composition"]["modules"]] == [False, True, True]


def test_substitute_takes_the_donors_module_and_bridges_where_statistics_differ(nets, tmp_path) -> None:
    donor, _ = load_model(nets["b"])
    assert _compose("substitute", "--from", str(nets["a"]), "--with", str(nets["b"]), "--module", "1",
                    "--out", str(tmp_path / "x")) == 0
    composed, saved = load_model(tmp_path / "x" / "model.pt")
    torch.testing.assert_close(composed.hidden[1].state_dict(), donor.hidden[1].state_dict())
    notes = saved["composition"]["adapters"]
    assert [note["before_module"] for note in notes] == [1, 2]
    placed = {note["before_module"] for note in notes if note["adapter"]}
    assert set(int(key) for key in composed.adapters) == placed
    assert saved["composition"]["modules"][1]["from"] == str(nets["b"])
    # the composed checkpoint is an ordinary source: a zoo reads every stage of it
    from taskspace.zoo.networks import default_checkpoint_layers

    assert len(default_checkpoint_layers(composed)) == 3
    # and it fine-tunes like any other: the adapters travel with its modules
    config = TrainConfig(task="3_vs_8", dataset="digits", width=8, cut_points=(1, 2), epochs=1, mode="finetune",
                         init_from=str(tmp_path / "x" / "model.pt"))
    assert 0.0 <= train_task(config, out_dir=tmp_path / "tuned")["test_accuracy"] <= 1.0
    tuned, _ = load_model(tmp_path / "tuned" / "model.pt")
    assert set(tuned.adapters) == set(composed.adapters)


@pytest.mark.parametrize(("argv", "expected"), [
    (["substitute", "--with", "{narrow}", "--module", "1"], "module 1 does not fit: the net's is digits_cnn width 8"),
    (["drop", "--keep", "3"], "must be 1 to 2"),
    (["port", "--keep", "4", "--task", "2_vs_5"], "must be 1 to 3"),
    (["stack", "--keep", "1"], "stack needs the target task"),
    (["substitute", "--with", "{b}", "--module", "5"], "module 5 does not exist"),
    (["port", "--keep", "1", "--task", "2_vs_55"], "55"),
    # an argument the operator does not read is said, never ignored
    (["invert", "--order", "0,1", "--keep", "1"], "invert does not use --keep; it takes --order, --task"),
    (["drop", "--keep", "1", "--epochs", "3"], "drop does not use --epochs; it takes --keep, --task"),
    (["substitute", "--with", "{b}", "--module", "1", "--order", "0,1"], "substitute does not use --order"),
])
def test_bad_compositions_are_one_line_and_write_nothing(nets, tmp_path, capsys, argv, expected) -> None:
    argv = [value.format(narrow=nets["narrow"], b=nets["b"]) for value in argv]
    out = tmp_path / "never"
    capsys.readouterr()
    assert _compose(argv[0], "--from", str(nets["a"]), *argv[1:], "--out", str(out)) == 2
    error = capsys.readouterr().err.strip()
    assert expected in error and len(error.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("argv", [["split", "--cut-points", "1,,2"], ["invert", "--order", "0,,1"]])
def test_an_empty_entry_in_a_module_list_is_a_mistake_not_a_shorter_list(nets, tmp_path, capsys, argv) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:  # argparse's own exit, with the command line's one-line error
        _compose(argv[0], "--from", str(nets["a"]), *argv[1:], "--out", str(tmp_path / "never"))
    assert stopped.value.code == 2
    assert f"expected numbers separated by single commas like 0,2,1, got '{argv[2]}'" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_a_composed_net_is_never_written_over_its_source(nets, capsys) -> None:
    before = nets["a"].read_bytes()
    assert _compose("drop", "--from", str(nets["a"]), "--keep", "1", "--out", str(nets["a"].parent)) == 2
    assert "holds the source" in capsys.readouterr().err
    assert nets["a"].read_bytes() == before


def test_an_output_folder_holding_a_network_is_refused_unless_replaced_whole(nets, tmp_path, capsys) -> None:
    out = tmp_path / "made"
    assert _compose("split", "--from", str(nets["a"]), "--cut-points", "1,2", "--out", str(out)) == 0
    assert sorted(p.name for p in (out / "modules").iterdir()) == ["module_0.pt", "module_1.pt", "module_2.pt"]
    before = (out / "model.pt").read_bytes()
    capsys.readouterr()
    assert _compose("split", "--from", str(nets["a"]), "--cut-points", "2", "--out", str(out)) == 2
    error = capsys.readouterr().err
    assert "already holds a network (model.pt, metrics.json, modules)" in error and "--overwrite" in error
    assert (out / "model.pt").read_bytes() == before
    # replaced: no module of the earlier split is left beside the new ones
    assert _compose("split", "--from", str(nets["a"]), "--cut-points", "2", "--out", str(out), "--overwrite") == 0
    assert sorted(p.name for p in (out / "modules").iterdir()) == ["module_0.pt", "module_1.pt"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["module_files"] == ["modules/module_0.pt", "modules/module_1.pt"]
    assert metrics["config_hash"] == "compose-split"  # never a training config's hash


def test_compose_never_writes_into_a_run(nets, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    (run / "zoo" / "3_vs_8").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    capsys.readouterr()
    assert _compose("drop", "--from", str(nets["a"]), "--keep", "1", "--out", str(run / "zoo" / "3_vs_8")) == 2
    error = capsys.readouterr().err
    assert f"is inside the run '{run.resolve()}'" in error and len(error.strip().splitlines()) == 1
    assert not list((run / "zoo" / "3_vs_8").iterdir())


@pytest.fixture(scope="module")
def uniform(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits net whose three inner modules share one interface (uniform_cnn, cut at every stage)."""
    folder = tmp_path_factory.mktemp("uniform")
    config = TrainConfig(task="3_vs_8", dataset="digits", architecture="uniform_cnn", width=8, cut_points=(1, 2, 3),
                         epochs=2, seed=0)
    train_task(config, out_dir=folder / "net")
    return folder / "net" / "model.pt"


def test_invert_in_the_same_order_is_the_same_trunk(uniform, tmp_path) -> None:
    assert _compose("invert", "--from", str(uniform), "--order", "0,1,2,3", "--out", str(tmp_path / "same")) == 0
    same, saved = load_model(tmp_path / "same" / "model.pt")
    source, _ = load_model(uniform)
    images = _probe(uniform)
    with torch.no_grad():
        torch.testing.assert_close(same.trunk(images), source.trunk(images))
    assert saved["composition"]["adapters"] == [] and not same.adapters


def test_invert_reorders_and_repeats_modules_with_their_weights_and_provenance(uniform, tmp_path) -> None:
    source, _ = load_model(uniform)
    assert _compose("invert", "--from", str(uniform), "--order", "0,3,2,1", "--out", str(tmp_path / "inv")) == 0
    inverted, saved = load_model(tmp_path / "inv" / "model.pt")  # rebuilt from its spec, as any checkpoint
    assert saved["spec"]["order"] == [0, 3, 2, 1]
    assert [m["module"] for m in saved["composition"]["modules"]] == [0, 3, 2, 1]
    for position, index in enumerate((0, 3, 2, 1)):
        mine, theirs = inverted.hidden[position].state_dict(), source.hidden[index].state_dict()
        assert mine.keys() == theirs.keys()
        for key in theirs:
            torch.testing.assert_close(mine[key], theirs[key])
    # module 3 ended in pre-activations: moved inward, it is followed by the ReLU the next module expects
    assert isinstance(list(inverted.hidden[1].children())[-1], torch.nn.ReLU)
    assert {note["before_module"] for note in saved["composition"]["adapters"]} == {1, 2, 3}
    metrics = json.loads((tmp_path / "inv" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["config_hash"] == "compose-invert"

    assert _compose("invert", "--from", str(uniform), "--order", "0,1,1", "--out", str(tmp_path / "rep")) == 0
    repeated, _ = load_model(tmp_path / "rep" / "model.pt")
    assert repeated.num_hidden == 3
    assert repeated.hidden[1] is not repeated.hidden[2]  # copies, never one module run twice by reference

    # it fine-tunes like any other checkpoint
    config = TrainConfig(task="3_vs_8", dataset="digits", architecture="uniform_cnn", width=8, cut_points=(1, 2, 3),
                         epochs=1, mode="finetune", init_from=str(tmp_path / "inv" / "model.pt"))
    assert 0.0 <= train_task(config, out_dir=tmp_path / "tuned")["test_accuracy"] <= 1.0
    tuned, saved = load_model(tmp_path / "tuned" / "model.pt")
    assert saved["spec"]["order"] == [0, 3, 2, 1] and set(tuned.adapters) == {"1", "2", "3"}

    # and a zoo scores it, every module, and measures its truth, as any checkpoint source
    (tmp_path / "zoo.toml").write_text('[[source]]\nname = "inverted"\ncheckpoint = "inv/model.pt"\n')
    (tmp_path / "space.toml").write_text('dataset = "digits"\npairs = [["1", "7"], ["3", "8"]]\n')
    assert main(["matrix", str(tmp_path / "run"), "--zoo", str(tmp_path / "zoo.toml"), "--space",
                 str(tmp_path / "space.toml"), "--target-dataset", "digits", "--score-samples", "60",
                 "--estimators", "logme", "--quiet"]) == 0
    matrix = json.loads((tmp_path / "run" / "matrix.json").read_text())["matrices"][0]
    # one layer per module: the moved module's output is read after the activation it gained
    assert matrix["sources"] == ["inverted:hidden.0.0.3", "inverted:hidden.1.1", "inverted:hidden.2.0.2",
                                 "inverted:hidden.3.0.2"]
    assert main(["truth", str(tmp_path / "run"), "--protocols", "frozen_k10", "--quiet"]) == 0


@pytest.mark.parametrize(("order", "expected"), [
    ("0,1,7", "the net has hidden modules 0 to 3; the order must list some of them, got [0, 1, 7]"),
    ("0,a", "--order takes whole numbers"),
])
def test_bad_orders_are_one_line_and_write_nothing(uniform, tmp_path, capsys, order, expected) -> None:
    capsys.readouterr()
    assert _compose("invert", "--from", str(uniform), "--order", order, "--out", str(tmp_path / "never")) == 2
    error = capsys.readouterr().err.strip()
    assert expected in error and len(error.splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_invert_says_where_an_architecture_cannot_be_reordered(nets, uniform, tmp_path, capsys) -> None:
    capsys.readouterr()
    assert _compose("invert", "--from", str(nets["a"]), "--order", "0,2,1", "--out", str(tmp_path / "x")) == 2
    error = capsys.readouterr().err.strip()
    assert "module 2 (digits_cnn" in error and "cannot follow module 0 (digits_cnn" in error
    assert "stages cannot be reordered" in error and not (tmp_path / "x").exists()
    assert "None" not in error  # a net built at its architecture's default width says so in words
    assert _compose("invert", "--from", str(nets["a"]), "--out", str(tmp_path / "x")) == 2
    assert "invert needs the new order" in capsys.readouterr().err
    # an inverted net is not composed further: its stages no longer follow its cut points
    assert _compose("invert", "--from", str(uniform), "--order", "0,2,1,3", "--out", str(tmp_path / "inv")) == 0
    capsys.readouterr()
    assert _compose("drop", "--from", str(tmp_path / "inv" / "model.pt"), "--keep", "1",
                    "--out", str(tmp_path / "y")) == 2
    assert "an inverted net" in capsys.readouterr().err
