"""Zoo runs: any model and any layer of it as a source, scored, measured, imported and judged.

The sources are a user's own factory network (``tests/zoo_models.py``) with weights saved as a plain
state_dict, and features extracted elsewhere (an NPZ per target); targets are digits tasks and the
whole digits dataset. Everything goes through the zoo file, as a user's would.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from taskspace.cli import main
from taskspace.errors import TaskspaceError
from taskspace.runner.record import open_any_run
from taskspace.zoo import read_zoo_file

ZOO = """
[[source]]
name = "mine"
factory = "zoo_models:small_cnn"
weights = "mine.pt"
options = {{ num_classes = 3 }}
layers = ["0.2", "0.5"]
input = {{ size = 8, mean = [0.5], std = [0.25] }}
logits = true
accuracy = 0.9

[[source]]
name = "other"
factory = "zoo_models:small_cnn"
weights = "other.pt"
options = {{ num_classes = 3, width = 4 }}
layers = ["0", "3"]
input = {{ mean = [0.5], std = [0.25] }}
{extra}
"""

SPACE = 'dataset = "digits"\npairs = [["1", "7"], ["3", "8"], ["1", "8"]]\n'


class Payload:
    """An object a weights file must not make taskspace unpickle."""


def _save_weights(path: Path, seed: int, **options: int) -> None:
    from zoo_models import small_cnn

    torch.manual_seed(seed)
    torch.save(small_cnn(**options).state_dict(), path)


@pytest.fixture()
def zoo_folder(tmp_path: Path) -> Path:
    _save_weights(tmp_path / "mine.pt", 0, num_classes=3)
    _save_weights(tmp_path / "other.pt", 1, num_classes=3, width=4)
    (tmp_path / "zoo.toml").write_text(ZOO.format(extra=""))
    (tmp_path / "space.toml").write_text(SPACE)
    return tmp_path


def _matrix(folder: Path, run: str = "run", *extra: str) -> int:
    return main(["matrix", str(folder / run), "--zoo", str(folder / "zoo.toml"), "--space",
                 str(folder / "space.toml"), "--target-dataset", "digits", "--score-samples", "60",
                 "--estimators", "logme,knn,leep,alignment_whitened,source_accuracy", "--quiet", *extra])


def test_zoo_file_is_checked_before_anything_runs(tmp_path: Path) -> None:
    cases = {
        "[[source]]\nname = 'a'\n": "name exactly one origin",
        "[[source]]\nname = 'a'\ntorchvision = 'resnet18'\ntimm = 'x'\n": "name exactly one origin",
        "[[source]]\nname = 'a'\nfactory = 'nocolon'\nweights = 'w.pt'\nlayers = ['x']\n": "package.module:function",
        "[[source]]\nname = 'a'\ntorchvision = 'resnet18'\nweights = 'missing.pt'\nlayers = ['x']\n": "does not exist",
        "[[source]]\nname = 'a'\ntorchvision = 'resnet18'\nwieghts = 'w.pt'\n": "did you mean 'weights'",
        "[[source]]\nname = 'a'\nfeatures = 'f.npz'\n": "must hold {target}",
        "[[source]]\nname = 'a:b'\nfeatures = '{target}.npz'\n": "letters, digits",
        "[[source]]\nname = 'a'\nfeatures = '{target}.npz'\n[[source]]\nname = 'a'\nfeatures = '{target}.npz'\n":
            "used twice",
        "[[source]]\nname = 'a'\ntorchvision = 'resnet18'\n": "needs weights",
    }
    for text, expected in cases.items():
        (tmp_path / "zoo.toml").write_text(text)
        with pytest.raises(TaskspaceError, match=expected.replace("{", r"\{").replace("}", r"\}")):
            read_zoo_file(tmp_path / "zoo.toml")


def test_zoo_run_end_to_end_with_layers_truth_import_verdict_and_recommendation(
        zoo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _matrix(zoo_folder) == 0
    run = zoo_folder / "run"
    header = (run / "matrix.csv").read_text().splitlines()[0]
    assert header == "source,layer,target,estimator,score"
    matrices = json.loads((run / "matrix.json").read_text())["matrices"]
    logme = next(m for m in matrices if m["estimator"] == "logme")
    assert logme["sources"] == ["mine:0.2", "mine:0.5", "other:0", "other:3"]
    assert logme["targets"] == ["1_vs_7", "3_vs_8", "1_vs_8", "digits"]
    assert all(value is not None for row in logme["scores"] for value in row)
    leep = next(m for m in matrices if m["estimator"] == "leep")
    assert all(value is not None for row in leep["scores"][:2] for value in row)  # 'mine' has logits = true
    assert all(value is None for row in leep["scores"][2:] for value in row)  # a factory's output is not logits
    sizes = json.loads((run / "modules.json").read_text())
    assert sizes["mine:0.2"]["parameters"] < sizes["mine:0.5"]["parameters"]

    assert main(["report", str(run), "--out", str(zoo_folder / "early")]) == 0  # before any truth: notes
    assert "No ground truth was measured" in (zoo_folder / "early" / "report.md").read_text()

    assert main(["truth", str(run), "--protocols", "frozen_all,frozen_k5", "--quiet"]) == 0
    truth = (run / "truth.csv").read_text().splitlines()
    assert truth[0] == "source,layer,target,protocol,accuracy"
    assert len(truth) == 1 + 2 * 4 * 4
    results = zoo_folder / "results.csv"
    results.write_text("source,layer,target,protocol,accuracy\n" + "".join(
        f"{source},{layer},{target},finetune_elsewhere,{0.5 + 0.1 * i}\n"
        for i, (source, layer) in enumerate([("mine", "0.2"), ("mine", "0.5"), ("other", "0"), ("other", "3")])
        for target in ("1_vs_7", "3_vs_8", "1_vs_8", "digits")))
    assert main(["truth", str(run), "--import", str(results)]) == 0
    assert len((run / "truth.csv").read_text().splitlines()) == 1 + 3 * 4 * 4

    capsys.readouterr()
    assert main(["evaluate", str(run), "--resamples", "50"]) == 0
    printed = capsys.readouterr().out
    assert "zoo_prior (baseline)" in printed and "source_size (baseline)" in printed
    verdict = (run / "evaluation.csv").read_text()
    # the imported truth is a perfect function of the module, so its zoo prior ranks perfectly
    prior = [line for line in verdict.splitlines() if line.startswith("zoo_prior,finetune_elsewhere")]
    assert prior and float(prior[0].split(",")[2]) == pytest.approx(1.0)

    assert main(["recommend", str(run), "--target", "digits", "--k", "2", "--estimator", "logme"]) == 0
    printed = capsys.readouterr().out
    saved = json.loads((run / "recommendations" / "digits__logme.json").read_text())
    assert saved["ranking"][0]["source"] in logme["sources"]
    for row in saved["ranking"][:2]:  # each module named by its layer and network, as the user wrote them
        network, layer = row["source"].split(":")
        assert f"layer {layer} of {network}" in printed, (row["source"], printed)
    assert saved["fit"] is not None  # fitted on the other targets' cells

    # a target the run lacks is scored now, through the store, as a run with that target scores it
    assert main(["recommend", str(run), "--target", "0_vs_9", "--k", "2", "--estimator", "logme", "--measure"]) == 0
    assert "(new task, " in capsys.readouterr().out
    fresh = json.loads((run / "recommendations" / "0_vs_9__logme.json").read_text())
    assert all(0.0 <= row["measured_accuracy"] <= 1.0 for row in fresh["ranking"])
    (zoo_folder / "new.toml").write_text('dataset = "digits"\npairs = [["0", "9"]]\n')
    assert main(["matrix", str(zoo_folder / "with-target"), "--zoo", str(zoo_folder / "zoo.toml"), "--space",
                 str(zoo_folder / "new.toml"), "--score-samples", "60", "--estimators", "logme", "--quiet"]) == 0
    scored = json.loads((zoo_folder / "with-target" / "matrix.json").read_text())["matrices"][0]
    expected = dict(zip(scored["sources"], (row[0] for row in scored["scores"]), strict=True))
    assert {row["source"]: row["score"] for row in fresh["ranking"]} == expected
    # by default the history ranker ranks it too: learned on the run's targets, the new one's values read as a
    # column whose truth is hidden
    assert main(["recommend", str(run), "--target", "0_vs_9"]) == 0
    printed = capsys.readouterr().out
    assert "sources ranked by history" in printed and "history: learned on 4 other targets" in printed

    figure = zoo_folder / "depth"
    assert main(["plot", str(run), "depth-profile", "--out", str(figure), "--formats", "png"]) == 0
    assert (zoo_folder / "depth.png").is_file()
    capsys.readouterr()
    assert main(["plot", str(run), "depth-profile", "--target", "digitz", "--out", str(figure)]) == 2
    assert "unknown target 'digitz'; did you mean 'digits'?; pass one of the run's targets: 1_vs_7, 3_vs_8" \
        in capsys.readouterr().err
    assert main(["plot", str(zoo_folder / "nowhere"), "depth-profile", "--out", str(figure)]) == 2
    error = capsys.readouterr().err
    assert "is not a folder" in error and "task-space" not in error

    assert main(["report", str(run)]) == 0
    report = (run / "report" / "report.md").read_text()
    for text in ("every (network, layer) is a module", "zoo_prior (baseline)", "Depth profiles",
                 "The module to reuse for every target", "`0.5`", "digits",
                 "6. Structure: modules and targets that transfer alike", "community 1 ("):
        assert text in report, text
    assert list((run / "report" / "figures").glob("depth-profile*.png"))
    assert list((run / "report" / "figures").glob("task-graph*.png"))
    assert list((run / "report" / "figures").glob("clustermap*.png"))
    assert "data:image/png;base64" in (run / "report" / "report.html").read_text()


def test_same_seed_same_matrix_and_resume(zoo_folder: Path) -> None:
    assert _matrix(zoo_folder, "first") == 0
    assert _matrix(zoo_folder, "second") == 0
    first = json.loads((zoo_folder / "first" / "matrix.json").read_text())["matrices"]
    second = json.loads((zoo_folder / "second" / "matrix.json").read_text())["matrices"]
    assert [m["scores"] for m in first] == [m["scores"] for m in second]
    cells = sorted((zoo_folder / "first" / "scores").iterdir())
    stamps = [cell.stat().st_mtime_ns for cell in cells]
    assert _matrix(zoo_folder, "first") == 0  # everything is there: nothing is computed again
    assert [cell.stat().st_mtime_ns for cell in cells] == stamps


def test_features_from_elsewhere_score_like_the_network_they_came_from(zoo_folder: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Features of 'mine' at layer 0.5, extracted outside taskspace, give the scores of 'mine:0.5'."""
    from taskspace.data import load_dataset
    from taskspace.tasks import TaskSpace
    from taskspace.zoo.networks import load_source
    from taskspace.zoo.targets import ZooTargets

    zoo = read_zoo_file(zoo_folder / "zoo.toml")
    network = load_source(zoo.source("mine"))
    dataset = load_dataset("digits")
    targets = ZooTargets("digits", TaskSpace.from_toml(zoo_folder / "space.toml"), whole_dataset=True)
    (zoo_folder / "elsewhere").mkdir()
    for target in targets.targets(dataset.class_names):
        from taskspace.zoo.targets import target_images

        images = target_images(dataset, target.task, score_samples=None, seed=0)
        batches = list(network.outputs(dataset.train.images[images.train]))
        features = np.concatenate([batch["0.5"] for batch in batches])
        np.savez(zoo_folder / "elsewhere" / f"{target.id}.npz", features=features, labels=images.train_labels)
    (zoo_folder / "zoo.toml").write_text(ZOO.format(extra='[[source]]\nname = "copy"\n'
                                                          'features = "elsewhere/{target}.npz"\n'))
    assert _matrix(zoo_folder) == 0
    matrices = json.loads((zoo_folder / "run" / "matrix.json").read_text())["matrices"]
    for matrix in matrices:
        rows = dict(zip(matrix["sources"], matrix["scores"], strict=True))
        if matrix["estimator"] in ("logme", "knn", "alignment_whitened"):
            assert np.allclose(rows["copy:features"], rows["mine:0.5"], rtol=1e-6)
        if matrix["estimator"] in ("leep", "source_accuracy"):
            assert all(value is None for value in rows["copy:features"])  # no classifier outputs, no accuracy

    # the features are the source: new bytes are another source, never scored beside the old ones
    written = (zoo_folder / "run" / "matrix.csv").read_bytes()
    first = sorted((zoo_folder / "elsewhere").glob("*.npz"))[0]
    arrays = dict(np.load(first))
    np.savez(first, features=2.0 * arrays["features"] + 1.0, labels=arrays["labels"])
    capsys.readouterr()
    assert _matrix(zoo_folder, "run", "--estimators", "logme,knn,leep,alignment_whitened,source_accuracy,nce") == 2
    error = capsys.readouterr().err
    assert "the features files of source(s) copy changed" in error and error.count("\n") == 1
    assert (zoo_folder / "run" / "matrix.csv").read_bytes() == written
    np.savez(first, **arrays)  # restored: the run reopens
    assert _matrix(zoo_folder) == 0
    # a template without {split} holds the train split only: frozen truth says the test split is needed
    capsys.readouterr()
    assert main(["truth", str(zoo_folder / "run"), "--protocols", "frozen_all", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "the test split's features are needed" in error and "{split}" in error and error.count("\n") == 1

    # a file that does not fit its target is refused before anything is written
    np.savez(zoo_folder / "elsewhere" / "digits.npz", features=np.full((5, 3), np.nan), labels=np.zeros(5))
    (zoo_folder / "bad").mkdir()
    assert _matrix(zoo_folder, "bad/run") == 2
    assert "has 5 rows and 5 labels but target 'digits'" in capsys.readouterr().err
    assert not (zoo_folder / "bad" / "run" / "run.json").exists()


def test_bad_sources_are_one_line_and_write_nothing(zoo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def attempt(extra: str, expected: str, *, base: str | None = None) -> None:
        (zoo_folder / "zoo.toml").write_text(base if base is not None else ZOO.format(extra=extra))
        capsys.readouterr()
        assert _matrix(zoo_folder, "attempt") == 2
        error = capsys.readouterr().err
        assert expected in error and error.count("\n") == 1 and "Traceback" not in error
        assert not (zoo_folder / "attempt").exists()

    _save_weights(zoo_folder / "wide.pt", 0, num_classes=5)
    attempt("", "'3.weight' is (5, 16) in", base=ZOO.format(extra="").replace("mine.pt", "wide.pt"))
    attempt("", "has no layer '0.9'; nearest node names", base=ZOO.format(extra="").replace('"0.5"]', '"0.9"]'))
    attempt("", "does not import", base=ZOO.format(extra="").replace("zoo_models:small_cnn", "no_such_pkg:f", 1))
    attempt("", "has no function 'smal_cnn'", base=ZOO.format(extra="").replace("small_cnn", "smal_cnn", 1))
    # the user's factory failing is the user's code, named as such (not "unexpected ... report it")
    attempt("", "source 'mine': its factory zoo_models:broken raised RuntimeError: this factory always fails",
            base=ZOO.format(extra="").replace("zoo_models:small_cnn", "zoo_models:broken", 1))
    torch.save({"0.0.weight": torch.zeros(1), "extra": Payload()}, zoo_folder / "unsafe.pt")
    attempt("", "never unpickles", base=ZOO.format(extra="").replace("mine.pt", "unsafe.pt"))
    attempt("", "cannot take (3, 8, 8) inputs", base=ZOO.format(extra="").replace(
        'mean = [0.5], std = [0.25] }\nlogits', 'mean = [0.5, 0.5, 0.5], std = [0.2, 0.2, 0.2] }\nlogits'))
    vit = ('[[source]]\nname = "vit"\nfactory = "torchvision.models.vision_transformer:VisionTransformer"\n'
           'weights = "vit.pt"\noptions = { image_size = 16, patch_size = 8, num_layers = 1, num_heads = 1, '
           'hidden_dim = 8, mlp_dim = 8, num_classes = 3 }\nlayers = ["encoder"]\n'
           'input = { size = 8, mean = [0.5, 0.5, 0.5], std = [0.2, 0.2, 0.2] }\n')
    from torchvision.models.vision_transformer import VisionTransformer

    torch.save(VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=1, hidden_dim=8, mlp_dim=8,
                                 num_classes=3).state_dict(), zoo_folder / "vit.pt")
    attempt("", "cannot take (3, 8, 8) inputs", base=vit)


def test_changed_weights_refuse_to_reopen_the_run(zoo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _matrix(zoo_folder) == 0
    _save_weights(zoo_folder / "mine.pt", 7, num_classes=3)
    capsys.readouterr()
    assert main(["evaluate", str(zoo_folder / "run")]) == 2
    assert "source(s) mine changed" in capsys.readouterr().err


def test_moved_weights_reopen_the_run_through_a_zoo_file_that_names_where_they_are(
        zoo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _matrix(zoo_folder) == 0
    before = (zoo_folder / "run" / "matrix.json").read_text()
    cells = sorted((zoo_folder / "run" / "scores").iterdir())
    stamps = [cell.stat().st_mtime_ns for cell in cells]
    moved = zoo_folder / "moved"
    moved.mkdir()
    for name in ("mine.pt", "other.pt", "zoo.toml", "space.toml"):
        (zoo_folder / name).rename(moved / name)
    (moved / "run").symlink_to(zoo_folder / "run")
    capsys.readouterr()
    assert main(["evaluate", str(zoo_folder / "run")]) == 2  # the recorded files are gone: said, with the fix
    assert "are gone; restore them, or name where they are now with `taskspace matrix" in capsys.readouterr().err
    assert _matrix(moved) == 0  # the same contents elsewhere: the same run, nothing scored again
    assert [cell.stat().st_mtime_ns for cell in cells] == stamps
    assert [m["scores"] for m in json.loads((zoo_folder / "run" / "matrix.json").read_text())["matrices"]] == \
        [m["scores"] for m in json.loads(before)["matrices"]]
    assert open_any_run(zoo_folder / "run").zoo.source("mine").weights == moved / "mine.pt"  # the record follows
    _save_weights(moved / "mine.pt", 7, num_classes=3)
    capsys.readouterr()
    assert _matrix(moved) == 2  # other contents under the same name: another run, refused
    assert "mine" in capsys.readouterr().err


def test_safetensors_weights_score_like_the_same_state_dict_saved_by_torch(
        zoo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Weights in the safetensors format are read by its own library (no pickle), and give the scores
    that the same tensors saved with torch.save give; a damaged one is refused in one line."""
    from safetensors.torch import save_file

    from taskspace.zoo.networks import is_safetensors

    state = torch.load(zoo_folder / "mine.pt", weights_only=True)
    save_file(state, zoo_folder / "mine.safetensors")
    assert is_safetensors(zoo_folder / "mine.safetensors") and not is_safetensors(zoo_folder / "mine.pt")
    assert _matrix(zoo_folder, "torch") == 0
    (zoo_folder / "zoo.toml").write_text(ZOO.format(extra="").replace("mine.pt", "mine.safetensors"))
    assert _matrix(zoo_folder, "safetensors") == 0
    torch_scores = json.loads((zoo_folder / "torch" / "matrix.json").read_text())["matrices"]
    safe_scores = json.loads((zoo_folder / "safetensors" / "matrix.json").read_text())["matrices"]
    assert [m["scores"] for m in safe_scores] == [m["scores"] for m in torch_scores]

    damaged = (zoo_folder / "mine.safetensors").read_bytes()
    (zoo_folder / "mine.safetensors").write_bytes(damaged[: len(damaged) // 2])
    capsys.readouterr()
    assert _matrix(zoo_folder, "damaged") == 2
    error = capsys.readouterr().err
    assert "cannot be read as safetensors" in error and error.count("\n") == 1
    assert not (zoo_folder / "damaged" / "matrix.json").exists()


def test_a_torchscript_source_scores_like_its_network_and_stays_quiet(
        zoo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A TorchScript file is read at its output, gives the scores of the same network's last layer, and
    torch's deprecation notices for TorchScript never reach the terminal."""
    from zoo_models import small_cnn

    network = small_cnn(num_classes=3)
    network.load_state_dict(torch.load(zoo_folder / "mine.pt", weights_only=True))
    network.eval()
    with pytest.warns(FutureWarning):  # torch says TorchScript is deprecated: taskspace keeps that to itself
        torch.jit.save(torch.jit.trace(network, torch.zeros(2, 1, 8, 8)), zoo_folder / "mine.ts")
    (zoo_folder / "zoo.toml").write_text(
        '[[source]]\nname = "mine"\nfactory = "zoo_models:small_cnn"\nweights = "mine.pt"\n'
        'options = { num_classes = 3 }\nlayers = ["3"]\ninput = { size = 8, mean = [0.5], std = [0.25] }\n'
        '[[source]]\nname = "scripted"\ntorchscript = "mine.ts"\n'
        'input = { size = 8, mean = [0.5], std = [0.25] }\n')
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _matrix(zoo_folder, "run", "--estimators", "logme,knn") == 0
        assert main(["truth", str(zoo_folder / "run"), "--protocols", "frozen_k5,finetune", "--quiet"]) == 0
    assert not [str(w.message) for w in caught if "torch" in w.filename], [str(w.message) for w in caught]
    for matrix in json.loads((zoo_folder / "run" / "matrix.json").read_text())["matrices"]:
        rows = dict(zip(matrix["sources"], matrix["scores"], strict=True))
        np.testing.assert_allclose(rows["scripted:output"], rows["mine:3"], rtol=1e-5)


def test_layer_outputs_are_pooled_to_one_vector_per_image() -> None:
    from taskspace.zoo.networks import pool

    maps = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    assert np.allclose(pool(maps, tokens="mean", name="x"), maps.mean(dim=(2, 3)).numpy())
    tokens = torch.randn(2, 5, 4)
    assert np.allclose(pool(tokens, tokens="first", name="x"), tokens[:, 0].numpy())
    assert np.allclose(pool(tokens, tokens="mean", name="x"), tokens.mean(dim=1).numpy())


def test_torchvision_source_on_real_cifar(tmp_path: Path, cifar_root: Path) -> None:
    """A torchvision architecture with a user's state_dict, three named layers, on a real CIFAR-10 target."""
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.get_model("resnet18", num_classes=4).state_dict(), tmp_path / "r18.pt")
    (tmp_path / "zoo.toml").write_text(
        '[[source]]\nname = "r18"\ntorchvision = "resnet18"\nweights = "r18.pt"\noptions = { num_classes = 4 }\n'
        'layers = ["layer2", "layer3", "layer4"]\ninput = { size = 32 }\n')
    (tmp_path / "space.toml").write_text('dataset = "cifar10"\npairs = [["cat", "dog"], ["automobile", "truck"]]\n')
    code = main(["matrix", str(tmp_path / "run"), "--zoo", str(tmp_path / "zoo.toml"), "--space",
                 str(tmp_path / "space.toml"), "--data-root", str(cifar_root), "--score-samples", "100",
                 "--estimators", "logme,leep", "--quiet"])
    assert code == 0
    rows = (tmp_path / "run" / "matrix.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 2 * 2
    assert {row.split(",")[1] for row in rows[1:]} == {"layer2", "layer3", "layer4"}


def test_timm_source_reads_its_layers(zoo_folder: Path) -> None:
    """A timm model (the optional extra), built without pretrained weights, with a user's state_dict."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet10t", pretrained=False, num_classes=3, in_chans=1).state_dict(),
               zoo_folder / "t.pt")
    (zoo_folder / "zoo.toml").write_text(
        '[[source]]\nname = "t"\ntimm = "resnet10t"\nweights = "t.pt"\noptions = { num_classes = 3, in_chans = 1 }\n'
        'layers = ["layer2", "layer4"]\ninput = { size = 32, mean = [0.5], std = [0.25] }\n')
    assert _matrix(zoo_folder) == 0
    rows = (zoo_folder / "run" / "matrix.csv").read_text().splitlines()[1:]
    assert {row.split(",")[1] for row in rows} == {"layer2", "layer4"}
    assert any(row.split(",")[3] == "leep" for row in rows)  # a timm model's output is its classifier's


def test_imported_results_are_checked_against_the_run(zoo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _matrix(zoo_folder) == 0
    run = zoo_folder / "run"
    cases = {
        "source,target,protocol,accuracy\nmine,digits,ft,0.5\n": "source 'mine' has layers 0.2, 0.5; name one",
        "source,layer,target,protocol,accuracy\nmien,0.2,digits,ft,0.5\n": "unknown source 'mien'; did you mean 'mine'",
        "source,layer,target,protocol,accuracy\nmine,0.3,digits,ft,0.5\n": "has no layer '0.3'",
        "source,layer,target,protocol,accuracy\nmine,0.2,digit,ft,0.5\n": "unknown target 'digit'",
        "source,layer,target,protocol,accuracy\nmine,0.2,digits,ft,1.5\n": "'1.5' is not a number in [0, 1]",
        "source,target,accuracy\nmine,digits,0.5\n": "lacks column(s) protocol",
        "source,layer,target,protocol,accuracy\nmine,0.2,digits,ft,0.5\nmine,0.2,digits,ft,0.6\n":
            "lines 2 and 3 give mine:0.2 on digits (ft) two accuracies; keep one",
    }
    for text, expected in cases.items():
        (zoo_folder / "results.csv").write_text(text)
        capsys.readouterr()
        assert main(["truth", str(run), "--import", str(zoo_folder / "results.csv")]) == 2
        error = capsys.readouterr().err
        assert expected in error and error.count("\n") == 1
        assert not (run / "truth.csv").exists()


def test_imports_accumulate_and_say_what_they_replaced(zoo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _matrix(zoo_folder) == 0
    run, results = zoo_folder / "run", zoo_folder / "results.csv"
    # a spreadsheet's byte-order mark and spaces after the commas are no error
    results.write_text("\ufeffsource, layer, target, protocol, accuracy\nmine, 0.2, digits, ft, 0.5\n"
                       "mine, 0.5, digits, ft, 0.6\nmine, 0.2, digits, ft, 0.5\n", encoding="utf-8")
    assert main(["truth", str(run), "--import", str(results)]) == 0
    assert "2 imported accuracies" in capsys.readouterr().out  # the repeated identical row counts once
    results.write_text("source,layer,target,protocol,accuracy\nmine,0.2,digits,ft,0.5\nmine,0.5,digits,ft,0.6\n"
                       "other,0,digits,ft,0.3\n")
    assert main(["truth", str(run), "--import", str(results)]) == 0
    assert main(["evaluate", str(run)]) == 0
    results.write_text("source,layer,target,protocol,accuracy\nmine,0.2,digits,ft,0.7\nother,0,digits,other_ft,0.4\n")
    assert main(["truth", str(run), "--import", str(results)]) == 0
    assert "(2 imported earlier kept; 1 given again, 1 of them with a new value)" in capsys.readouterr().out
    # the verdict was computed before this truth: the report says so and shows none of it
    from taskspace.report import write_report

    page = write_report(run).markdown.read_text(encoding="utf-8")
    verdict = page[page.index("2. Verdict"):]
    verdict = verdict[:verdict.index("\n## ", 5)]
    assert "computed before its current scores or truth" in verdict and "taskspace evaluate" in verdict
    assert "| logme" not in verdict
    truth = {tuple(line.split(",")[:4]): float(line.split(",")[4])
             for line in (run / "truth.csv").read_text().splitlines()[1:]}
    assert truth == {("mine", "0.2", "digits", "ft"): 0.7, ("mine", "0.5", "digits", "ft"): 0.6,
                     ("other", "0", "digits", "ft"): 0.3, ("other", "0", "digits", "other_ft"): 0.4}


def test_structure_and_similarity_read_a_zoo_run(zoo_folder: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert _matrix(zoo_folder) == 0
    capsys.readouterr()
    # the task graph and its communities on any matrix: modules -> targets, a bipartite graph
    assert main(["structure", str(zoo_folder / "run")]) == 0
    record = json.loads((zoo_folder / "run" / "structure" / "structure.json").read_text())
    assert record["edges"] > 0 and record["task_groups"] is None
    # the affinity clustering needs a task-by-task matrix, and says so instead of drawing one
    assert all(entry["leaf_order"] is None and "square" in entry["leaf_order_error"]
               for entry in record["recovery"].values())
    capsys.readouterr()
    # CKA between every (source, layer) module on one probe of the targets' test images, from the store
    assert main(["similarity", str(zoo_folder / "run"), "--samples", "120"]) == 0
    out = capsys.readouterr().out
    assert "cka_linear between the 4 modules of the run on 120 probe images" in out
    assert "not measured" in out  # similarity vs transfer needs the task-by-task view, and says so
    from taskspace.runner.record import open_any_run
    from taskspace.similarity import linear_cka, stored_similarity
    from taskspace.zoo.forward import zoo_fingerprint
    from taskspace.zoo.store import layer_features

    run = open_any_run(zoo_folder / "run")
    similarity = stored_similarity(run)
    assert similarity is not None and similarity.sources == ("mine:0.2", "mine:0.5", "other:0", "other:3")
    np.testing.assert_allclose(np.diag(similarity.scores), 1.0, atol=1e-6)
    # a cell is the CKA of the two modules' own forward passes on the probe images, made here without the store
    assert similarity.provenance["probe_size"] == 120
    spec_mine, spec_other = run.zoo.sources
    positions = np.flatnonzero(np.isin(run.dataset().test.labels, [run.dataset().class_names.index(name)
                                                                     for name in similarity.provenance["probe_classes"]]))
    from taskspace.training.seeds import derive_seed

    positions = np.sort(np.random.default_rng(derive_seed(0, "similarity-probe")).choice(positions, 120, replace=False))
    fresh = {}
    for spec in (spec_mine, spec_other):
        layers, _, _ = layer_features(spec, source_record=spec.to_record(), dataset=run.dataset(),
                                      fingerprint=zoo_fingerprint(run), split="test", indices=positions,
                                      folder=zoo_folder / "elsewhere")
        fresh.update({spec.module(layer): values for layer, values in layers.items()})
    assert similarity.scores[0, 3] == pytest.approx(linear_cka(fresh["mine:0.2"], fresh["other:3"]), abs=1e-6)
    # the zoo's report shows it
    assert main(["report", str(zoo_folder / "run")]) == 0
    report = (zoo_folder / "run" / "report" / "report.md").read_text()
    assert "5. Module similarity" in report and "similarity-clustermap" in report


def test_finetune_truth_cuts_the_network_at_the_layer_and_is_seeded(zoo_folder: Path) -> None:
    for name in ("first", "second"):
        assert _matrix(zoo_folder, name) == 0
        assert main(["truth", str(zoo_folder / name), "--protocols", "finetune", "--targets", "1_vs_7",
                     "--quiet"]) == 0
    first, second = ((zoo_folder / name / "truth.csv").read_text() for name in ("first", "second"))
    assert first == second
    rows = [line.split(",") for line in first.splitlines()[1:]]
    assert {(row[0], row[1]) for row in rows} == {("mine", "0.2"), ("mine", "0.5"), ("other", "0"), ("other", "3")}
    assert all(row[2] == "1_vs_7" and 0.0 <= float(row[4]) <= 1.0 for row in rows)
    # each cell records its recipe; the protocol names are the one registry's
    cells = [json.loads(path.read_text()) for path in (zoo_folder / "first" / "truth").rglob("*.json")]
    assert cells and all(cell["recipe"]["lr"] == 0.01 and cell["recipe"]["epochs"] == 2 for cell in cells)
    assert main(["truth", str(zoo_folder / "first"), "--protocols", "finetuen", "--quiet"]) == 2
    assert main(["truth", str(zoo_folder / "first"), "--protocols", "frozen_k0", "--quiet"]) == 2


def test_finetune_learning_rate_is_an_option_of_the_run_and_a_recipe_is_chosen_on_validation(
        zoo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--finetune-lr`` is part of the run's identity (a reopened run refuses another rate), and
    ``validation_accuracy`` fine-tunes on the training images left after a validation split and tests on
    that split: what a recipe is chosen on, with no test image involved."""
    import dataclasses

    from taskspace.zoo.finetune import validation_accuracy
    from taskspace.zoo.run import ZooRun

    assert _matrix(zoo_folder, "fast", "--finetune-lr", "0.05") == 0
    run = ZooRun.open(zoo_folder / "fast")
    assert run.options.finetune_lr == 0.05
    capsys.readouterr()
    assert main(["truth", str(zoo_folder / "fast"), "--protocols", "finetune", "--finetune-lr", "0.01",
                 "--quiet"]) == 2
    assert "finetune_lr" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["truth", str(zoo_folder / "fast"), "--finetune-lr", "-1"])
    assert exit_.value.code == 2 and "--finetune-lr must be a finite number above 0" in capsys.readouterr().err

    target = next(t for t in run.target_list() if t.id == "1_vs_7")
    images, dataset = run.images(target), run.dataset()
    record = validation_accuracy(run.zoo.source("mine"), "0.5", target.id, images, dataset=dataset,
                                 options=run.options, validation=40)
    assert record["validation_images"] == 40 and record["train_images"] == len(images.train) - 40
    assert 0.0 <= record["accuracy"] <= 1.0
    # the test split is never read: a dataset whose test images are noise gives the same accuracy
    noisy = dataclasses.replace(dataset, test=dataclasses.replace(
        dataset.test, images=np.random.default_rng(0).integers(0, 255, dataset.test.images.shape, dtype=np.uint8)))
    assert validation_accuracy(run.zoo.source("mine"), "0.5", target.id, images, dataset=noisy,
                               options=run.options, validation=40) | {"train_seconds": 0} == record | {
        "train_seconds": 0}
    with pytest.raises(ValueError, match="too few"):
        validation_accuracy(run.zoo.source("mine"), "0.5", target.id, images, dataset=dataset,
                            options=dataclasses.replace(run.options, finetune_samples=None),
                            validation=len(images.train))


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_scoring_side_by_side_gives_the_serial_scores(zoo_folder: Path, capsys: pytest.CaptureFixture[str],
                                                      executor: str) -> None:
    """A process pool or Ray scores each source in a worker from the forward passes the driver made, and
    fine-tunes each module in a worker: the same numbers as in this process."""
    assert _matrix(zoo_folder, "serial") == 0
    assert _matrix(zoo_folder, "pool", "--executor", executor, "--workers", "2") == 0
    serial = json.loads((zoo_folder / "serial" / "matrix.json").read_text())["matrices"]
    pool = json.loads((zoo_folder / "pool" / "matrix.json").read_text())["matrices"]
    assert [m["scores"] for m in serial] == [m["scores"] for m in pool]
    for cell in sorted((zoo_folder / "serial" / "scores").iterdir()):
        first, second = json.loads(cell.read_text()), json.loads((zoo_folder / "pool" / "scores" / cell.name).read_text())
        assert first["scores"] == second["scores"] and first["width"] == second["width"]
    assert json.loads((zoo_folder / "pool" / "modules.json").read_text()) == json.loads(
        (zoo_folder / "serial" / "modules.json").read_text())
    truth = ["--protocols", "finetune,frozen_k2", "--targets", "1_vs_7", "--threads", "1",
             "--quiet"]
    assert main(["truth", str(zoo_folder / "serial"), *truth]) == 0
    assert main(["truth", str(zoo_folder / "pool"), *truth, "--executor", executor, "--workers", "2"]) == 0
    assert (zoo_folder / "pool" / "truth.csv").read_text() == (zoo_folder / "serial" / "truth.csv").read_text()
    assert (zoo_folder / "pool" / "truth.csv").read_text().count("finetune") == 4


def test_a_timm_source_without_input_is_fed_its_own_statistics(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    from taskspace.zoo.networks import load_source
    from taskspace.zoo.spec import IMAGENET_INPUT, read_zoo_file

    options = {"img_size": 32, "patch_size": 16, "embed_dim": 24, "depth": 1, "num_heads": 2, "num_classes": 3}
    torch.save(timm.create_model("vit_tiny_patch16_224", pretrained=False, **options).state_dict(), tmp_path / "vit.pt")
    (tmp_path / "zoo.toml").write_text(
        '[[source]]\nname = "vit"\ntimm = "vit_tiny_patch16_224"\nweights = "vit.pt"\nlayers = ["blocks.0"]\n'
        'options = { img_size = 32, patch_size = 16, embed_dim = 24, depth = 1, num_heads = 2, num_classes = 3 }\n'
        '[[source]]\nname = "res"\ntimm = "resnet18"\nweights = "vit.pt"\nlayers = ["layer1"]\n')
    zoo = read_zoo_file(tmp_path / "zoo.toml")
    vit, res = zoo.sources
    # a ViT from timm expects (0.5, 0.5, 0.5), not ImageNet's statistics; the source's identity records them
    assert vit.input.mean == vit.input.std == (0.5, 0.5, 0.5)
    assert vit.to_record()["input"]["mean"] == [0.5, 0.5, 0.5]
    assert (res.input.mean, res.input.std) == (IMAGENET_INPUT["mean"], IMAGENET_INPUT["std"])
    network = load_source(vit)
    assert tuple(network.mean) == (0.5, 0.5, 0.5) and tuple(network.std) == (0.5, 0.5, 0.5)


def test_a_grey_checkpoint_on_colour_targets_is_told_the_real_problem(tmp_path: Path, cifar_root: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from taskspace.config import TrainConfig
    from taskspace.training import train_task

    train_task(TrainConfig(task="3_vs_8", dataset="digits", epochs=1, seed=0), out_dir=tmp_path / "grey")
    (tmp_path / "zoo.toml").write_text('[[source]]\nname = "grey"\ncheckpoint = "grey/model.pt"\n')
    (tmp_path / "space.toml").write_text('dataset = "cifar10"\npairs = [["cat", "dog"]]\n')
    capsys.readouterr()
    assert main(["matrix", str(tmp_path / "run"), "--zoo", str(tmp_path / "zoo.toml"), "--space",
                 str(tmp_path / "space.toml"), "--data-root", str(cifar_root), "--score-samples", "50",
                 "--estimators", "logme", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "is a network of 1-channel images" in error and "score it on targets of a 1-channel dataset" in error
    assert "give input mean" not in error and error.count("\n") == 1
    assert not (tmp_path / "run" / "run.json").exists()
