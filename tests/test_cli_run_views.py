"""The commands that read a finished run (structure, similarity, plot) and add to its truth (--targets,
--import); the run is the digits fixture."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ElementTree

import networkx as nx
import numpy as np
import pytest

from taskspace.cli import main


@pytest.fixture()
def run(digits_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(digits_run, copy)
    return copy


def test_structure_writes_graph_files_and_group_recovery(run, capsys) -> None:
    assert main(["structure", str(run), "--top-k", "2"]) == 0
    printed = capsys.readouterr().out
    from taskspace.runner import Run

    assert f"task graph of {Run.open(run).default_estimator()}" in printed
    assert "adjusted Rand index" in printed
    record = json.loads((run / "structure" / "structure.json").read_text())
    assert record["edges"] == 6 * 2
    assert set(record["recovery"]) == {"alignment", "kernel_ridge_r2", "logme", "frozen_k5", "frozen_all"}
    for entry in record["recovery"].values():
        assert set(entry["adjusted_rand_index"]) == {"sources", "targets", "affinity"}
        assert all(-1.0 <= value <= 1.0 for value in entry["adjusted_rand_index"].values())
    graph = nx.read_graphml(run / "structure" / "graph.graphml")
    assert graph.number_of_edges() == 12 and all(graph.in_degree(node) == 2 for node in graph)
    assert {graph.nodes[node]["group"] for node in graph} == {"strokes", "loops", "loops|strokes"}
    assert nx.read_gexf(run / "structure" / "graph.gexf").number_of_edges() == 12
    with pytest.raises(SystemExit) as exit_info:
        main(["structure", str(run), "--top-k", "0"])
    assert exit_info.value.code == 2
    assert "--top-k must be at least 1" in capsys.readouterr().err


def test_similarity_prints_cka_and_its_agreement_with_transfer(run, capsys) -> None:
    assert main(["similarity", str(run), "--samples", "200"]) == 0
    printed = capsys.readouterr().out
    assert "cka_linear between the 6 modules" in printed
    from taskspace.runner import Run

    assert f"vs {Run.open(run).default_estimator()}" in printed and "vs frozen_all" in printed
    assert (run / "similarity" / "cka_linear.json").is_file()
    assert main(["similarity", str(run), "--kernel", "cosine"]) == 2
    assert "kernel" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["heatmap", "truth-heatmap", "clustermap", "graph", "estimate-vs-truth"])
def test_plot_writes_png_and_svg(run, tmp_path, kind) -> None:
    stem = tmp_path / "figures" / kind
    assert main(["plot", str(run), kind, "--out", str(stem)]) == 0
    assert (tmp_path / "figures" / f"{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ElementTree.parse(tmp_path / "figures" / f"{kind}.svg")


def test_old_plot_spelling_still_works_with_a_notice(run, tmp_path, capsys) -> None:
    assert main(["plot", "heatmap", "--run", str(run), "--out", str(tmp_path / "old")]) == 0
    assert "deprecated" in capsys.readouterr().err
    assert (tmp_path / "old.png").is_file()


def test_plot_kind_typo_is_answered_with_did_you_mean(run, tmp_path, capsys) -> None:
    assert main(["plot", str(run), "heatmpa", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 'heatmap'" in capsys.readouterr().err


def test_plot_that_needs_truth_says_so_without_it(run, tmp_path, capsys) -> None:
    (run / "truth.csv").unlink()
    assert main(["plot", str(run), "estimate-vs-truth", "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert "needs ground truth" in error and f"taskspace truth {run}" in error and error.count("\n") == 1
    assert not list(tmp_path.glob("x.*"))


def test_commands_refuse_a_folder_that_is_not_a_run(tmp_path, capsys) -> None:
    for command in (["structure", str(tmp_path)], ["similarity", str(tmp_path)],
                    ["plot", str(tmp_path), "heatmap", "--out", str(tmp_path / "x")]):
        assert main(command) == 2
        assert capsys.readouterr().err.startswith("taskspace: error:")


def test_matrix_of_another_schema_is_refused(run, tmp_path, capsys) -> None:
    document = json.loads((run / "matrix.json").read_text())
    document["schema"] = 99
    (run / "matrix.json").write_text(json.dumps(document))
    assert main(["plot", str(run), "heatmap", "--out", str(tmp_path / "x")]) == 2
    assert "schema" in capsys.readouterr().err


def test_a_trained_run_measures_chosen_targets_and_imports_results(run, tmp_path, capsys) -> None:
    """--targets and --import work on a trained run as on a zoo run: truth.csv keeps every measured and
    imported cell, of every protocol, and the verdict reads them."""
    from taskspace.runner import Run

    folder = run
    before = Run.open(folder).truths()
    shutil.rmtree(folder / "truth" / "frozen_k5")
    assert main(["truth", str(folder), "--protocols", "frozen_k5", "--targets", "1_vs_7,3_vs_8", "--quiet"]) == 0
    truths = Run.open(folder).truths()
    # the other protocol's cells stay in truth.csv; the chosen targets' columns are measured again, equal
    assert truths["frozen_all"].equals(before["frozen_all"])
    measured = [truths["frozen_k5"].targets.index(target) for target in ("1_vs_7", "3_vs_8")]
    others = [index for index in range(len(truths["frozen_k5"].targets)) if index not in measured]
    np.testing.assert_array_equal(truths["frozen_k5"].scores[:, measured], before["frozen_k5"].scores[:, measured])
    assert np.isnan(truths["frozen_k5"].scores[:, others]).all()
    capsys.readouterr()
    assert main(["truth", str(folder), "--targets", "1_vs_9"]) == 2
    assert "not a task of the run" in capsys.readouterr().err
    results = tmp_path / "measured.csv"
    results.write_text("source,target,protocol,accuracy\n1_vs_7,3_vs_8,finetune_elsewhere,0.75\n"
                       "3_vs_8,1_vs_7,finetune_elsewhere,0.5\n")
    assert main(["truth", str(folder), "--import", str(results)]) == 0
    truths = Run.open(folder).truths()
    assert set(truths) == {"frozen_all", "frozen_k5", "finetune_elsewhere"}
    imported = truths["finetune_elsewhere"]
    assert imported.scores[imported.sources.index("1_vs_7"), imported.targets.index("3_vs_8")] == 0.75
    assert np.isfinite(imported.scores).sum() == 2
    results.write_text("source,target,protocol,accuracy\n1_vs_7,9_vs_8,finetune_elsewhere,0.75\n")
    assert main(["truth", str(folder), "--import", str(results)]) == 2
    assert "unknown target '9_vs_8'" in capsys.readouterr().err
    results.write_text("source,layer,target,protocol,accuracy\n1_vs_7,fc,3_vs_8,finetune_elsewhere,0.75\n")
    assert main(["truth", str(folder), "--import", str(results)]) == 2
    assert "leave its layer column empty" in capsys.readouterr().err
    assert main(["evaluate", str(folder), "--resamples", "50"]) == 0


def test_a_trained_runs_depth_profile_reads_its_networks_at_every_module_boundary(run, digits_run, tmp_path,
                                                                                 capsys) -> None:
    """plot depth-profile on a trained run scores its own networks at every module boundary, in a zoo run kept
    inside the run (RUN/depth), with the same scores as a zoo file of the run's checkpoints would give."""
    figure = tmp_path / "depth"
    assert main(["plot", str(run), "depth-profile", "--estimator", "logme", "--out", str(figure), "--formats",
                 "png"]) == 0
    assert "at every module boundary" in capsys.readouterr().out and (tmp_path / "depth.png").is_file()
    inside = json.loads((run / "depth" / "matrix.json").read_text())["matrices"][0]
    assert len([module for module in inside["sources"] if module.startswith("1_vs_7:")]) >= 2
    # the same numbers as the zoo file a user would write, scored with the run's images and seed
    from taskspace.runner import Run

    grid = Run.open(run).grid
    zoo = tmp_path / "zoo.toml"
    zoo.write_text("".join(f'[[source]]\nname = "{task}"\ncheckpoint = "{run}/zoo/{task}/model.pt"\n\n'
                           for task in Run.open(run).space.ids))
    samples = ["--score-samples", str(grid.score_samples)] if grid.score_samples else []
    space = digits_run.parent / "space.toml"  # the run's own space
    assert main(["matrix", str(tmp_path / "depths"), "--zoo", str(zoo), "--space", str(space), *samples,
                 "--seed", str(grid.seed), "--estimators", "logme", "--quiet"]) == 0
    outside = json.loads((tmp_path / "depths" / "matrix.json").read_text())["matrices"][0]
    assert (outside["sources"], outside["targets"]) == (inside["sources"], inside["targets"])
    assert outside["scores"] == inside["scores"]
    # a second plot reads the scores kept inside the run
    assert main(["plot", str(run), "depth-profile", "--estimator", "logme", "--target", "1_vs_7", "--out",
                 str(figure), "--formats", "png"]) == 0
