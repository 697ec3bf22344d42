"""Write the generated pages of the documentation: references from the code, results from their JSON.

    python docs/generate.py            # rewrite docs/reference/*.md (generated ones), docs/results/*.md
                                       # and the README's tour (from benchmarks/results/tour.json)
    python docs/generate.py --check    # exit 1 when a committed page differs from what the code and JSON give

The references come from the registries' own metadata (estimators, objectives, kernels, architectures,
ground-truth protocols, executors) and from the CLI's parser; every results page is rendered from one
``benchmarks/results/*.json`` file, with the command that reproduces it and the machine it ran on. No
table is copied by hand, so a page cannot drift from its JSON (``tests/test_docs.py`` runs ``--check``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
RESULTS = ROOT / "benchmarks" / "results"

sys.path.insert(0, str(DOCS))
from findings import FINDINGS_BEGIN, FINDINGS_END, render_findings  # noqa: E402  (docs/findings.py, beside)

#: How each results file is made: file-name prefix -> (the command, what it measures). Longest prefix wins.
PRODUCERS: dict[str, tuple[str, str]] = {
    "transfer_default_seed1": ("python benchmarks/transfer_grid.py --space default --seed 1 --name default_seed1",
                               "Every estimator against the measured truth on a second zoo (seed 1) of the default space."),
    "transfer_default": ("python benchmarks/transfer_grid.py --space default --protocols frozen_k10,frozen_all,finetune",
                         "Every estimator against the measured truths on the default space (15 CIFAR-10 tasks)."),
    "transfer_confirm": ("python benchmarks/transfer_grid.py --space benchmarks/spaces/confirm.toml",
                         "Every estimator against the measured truths on the confirmation space (not tuned on)."),
    "kernel_score_study": ("python benchmarks/kernel_score_study.py benchmarks/work/grid-default",
                           "Candidate kernel-family scores, chosen on the default space."),
    "open_zoo_training": ("python benchmarks/train_open_zoo.py",
                          "The open zoo's seven torchvision networks, each trained from scratch on its own classes."),
    "open_zoo_finetune": ("python benchmarks/open_zoo_finetune.py",
                          "The open zoo against fine-tuning on all 16 targets: the learning rate chosen on a "
                          "validation split by the rule of docs/history.md, then every module measured at it "
                          "under two seeds, with every estimator's matrix; benchmarks/history_ranker.py reads it."),
    "open_zoo": ("python benchmarks/open_zoo.py",
                 "Any model, any layer: every estimator and the target-blind baselines on an open zoo of seven "
                 "architectures and two modular nets, layer by layer, against frozen and fine-tuned truths. Its "
                 "linear_probe cells were fitted to the minimum (Newton) on the 15 binary targets and by L-BFGS "
                 "at gradient tolerance 1e-6 on the 10-class target (linear_probe now uses 1e-4 there: the same "
                 "held-out accuracy to 0.003 at this size)."),
    "few_images": ("python benchmarks/few_images.py",
                   "kernel_ridge_r2 (the default when measured) on 50 to 9,000 target images, beside LogME, "
                   "alignment_whitened and kernel_ridge_loo, with paired intervals."),
    "compose_study": ("python benchmarks/compose_study.py",
                      "Modular workflows on the default space: stacking, porting, fine-tuning and training from "
                      "scratch; reusability by depth; substitution against CKA and the transferability score."),
    "invert_study": ("python benchmarks/invert_study.py",
                     "The sixth operator on the 15 tasks of the default space: uniform_cnn nets (modular and end to "
                     "end, 3 epochs) with their inner modules in every order, through compose invert; the drop from "
                     "the original order, paired over tasks, and whether CKA between moved modules predicts it."),
    "one_store": ("python benchmarks/one_store.py --before REVISION",
                  "The one store: the README tour's matrix and frozen truth, measured by the version before the "
                  "store (each truth cell passing its target's images through the source again) and by this one "
                  "(the truth reads the scores' forward passes), side by side on one machine, with equality of "
                  "their numbers."),
    "estimator_cost": ("python benchmarks/estimator_cost.py --logme-peer PATH",
                       "Every estimator's time and memory at n = 50,000, d = 2,048; LogME against its authors' code. "
                       "Where n < d the two scores differ (n = 1,000, d = 2,048: -0.18 against 3.56): the authors' "
                       "code leaves (d - n)/2 log α out of the log-determinant, taskspace computes the exact "
                       "evidence, which tests/test_scoring_estimators.py checks against the evidence computed "
                       "from the dense matrices (n = 8, d = 12)."),
    "label_efficiency": ("python benchmarks/label_efficiency.py",
                         "The output module with 1, 10, 100 labels per class and all, on a frozen trunk."),
    "modular_vs_e2e": ("python benchmarks/modular_vs_e2e.py", "Modular against end-to-end training, equal epochs."),
    "objective_sweep": ("python benchmarks/objective_sweep.py", "Hidden objectives, temperatures and recipes."),
    "output_module": ("python benchmarks/output_module.py", "How much refitting the output module moves accuracy."),
    "ray_cluster": ("python benchmarks/ray_cluster.py",
                    "The default space's scoring stage on a two-node Ray cluster against the process pool; both "
                    "nodes run on the one 2-core machine, so the figure is the overhead of Ray, not a speed-up."),
    "scoring_budget": ("python benchmarks/scoring_budget.py benchmarks/work/grid-default --samples 500,1000",
                       "The cost of scoring the whole matrix against the fine-tuning truth."),
    "scoring_cost": ("python benchmarks/scoring_cost.py", "Time and memory of the estimators as n grows."),
    "scoring_threads": ("python benchmarks/scoring_threads.py benchmarks/work/grid-default",
                        "Estimators on one BLAS/OpenMP thread against the default thread pools."),
    "seed_stability": ("python benchmarks/seed_stability.py benchmarks/work/grid-default",
                       "How the estimators' verdicts move with the score sample's seed."),
    "structure": ("python benchmarks/structure_study.py benchmarks/work/grid-<space>",
                  "Whether the matrices and module similarity recover the known class groups."),
    "throughput": ("python benchmarks/throughput.py", "Step times of modular and end-to-end training."),
    "paper_scale_recipe_cpu-w16": ("python benchmarks/paper_scale.py recipe --device cpu --width 16 --epochs 5 "
                                   "--seeds 0 --recipes e2e,paper,supcon,paper_lr0.5 --modules 2 --tag cpu-w16",
                                   "A reduced check on 2 CPU cores, not the paper's figures: ResNet-18 at a quarter "
                                   "of its width, 10-class CIFAR-10, 5 epochs, one seed; modular (the paper's "
                                   "objective, supervised contrastive) against end to end."),
    "data_path": ("python benchmarks/data_path.py",
                  "The training data path per epoch of 9,000 images: batches normalised from a uint8 split "
                  "against the former float32 split, in time and memory."),
    "zoo_executors": ("python benchmarks/zoo_executors.py --workers 2",
                      "Scoring the open zoo's 29 modules on 16 targets in this process against two worker "
                      "processes, from the same cached forward passes; the matrices must be equal."),
    "accuracy_prediction": ("python benchmarks/accuracy_prediction.py",
                            "How well recommend's predicted accuracy matches the measured one on targets of "
                            "2 to 10 classes: a plain score-to-accuracy line against one fitted from chance "
                            "to 1 (the default)."),
    "paper_scale_speed_cpu": ("python benchmarks/paper_scale.py speed --device cpu --speed-images 1024 --speed-epochs 4 "
                              "--tag cpu",
                              "ResNet-18 (width 64) steps on 2 CPU cores: images/s of an end-to-end step and of each "
                              "modular step, warm; the GPU figures of the paper-scale benchmark are not measured yet "
                              "(see the GPU page)."),
    "history_ranker": ("python benchmarks/history_ranker.py",
                       "The history ranker (docs/history.md) against the leave-one-target-out zoo prior and every "
                       "estimator: the public Model Spider matrices and the CIFAR-10 task spaces."),
    "interval_coverage": ("python benchmarks/interval_coverage.py",
                          "How often the percentile, BCa and t intervals over 6 to 45 targets cover the mean, on "
                          "per-target values of real runs; the rule that chose the printed interval (BCa)."),
    "default_estimator": ("python benchmarks/default_estimator.py",
                          "The default estimator chosen by the rule of docs/default-estimator.md: every estimator "
                          "on the default space's frozen truths, confirmed on the digits and confirmation spaces."),
    "tour": ("python benchmarks/tour.py", "The README's five-minute tour, run for real: commands, output, times."),
    "truth_ceiling": ("python benchmarks/truth_ceiling.py benchmarks/work/grid-<space>",
                      "How reproducible the frozen truths are under resampling of the test images."),
    "zoo_seeds": ("python benchmarks/zoo_seeds.py transfer_default transfer_default_seed1",
                  "The verdicts of two zoos of the same space."),
}

#: Keys whose values are too large to show as tables (they stay in the JSON).
_HIDDEN = {"matrices", "matrix", "environment", "depth_profiles", "zoo", "modules", "per_target", "per_cell"}


# Formatting ------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):
        if all(not isinstance(item, (dict, list)) for item in value) and len(value) <= 12:
            return ", ".join(_cell(item) for item in value)
        return f"({len(value)} values in the JSON)"
    if isinstance(value, dict):
        return f"({len(value)} entries in the JSON)"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list)) or (
        isinstance(value, list) and all(not isinstance(item, (dict, list)) for item in value))


def _render_value(name: str, value: Any, level: int) -> list[str]:
    """Markdown blocks for one top-level value of a results file."""
    heading = "#" * level + " " + name.replace("_", " ")
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        columns = list(dict.fromkeys(key for row in value for key, item in row.items()
                                     if _is_scalar(item) and key not in _HIDDEN))
        texts = [column for column in columns if any(_is_multiline(row.get(column)) for row in value)]
        columns = [column for column in columns if column not in texts]
        blocks = [heading, _table(columns, ([row.get(column) for column in columns] for row in value))]
        for row in value:  # a multi-line text (a command's output) under its row's first value, verbatim
            label = str(row.get(columns[0], "")) if columns else ""
            blocks += _output_blocks({f"{label}: {column}" if len(texts) > 1 else label or column: row[column]
                                      for column in texts if isinstance(row.get(column), str)}, level + 1)
        return blocks
    if isinstance(value, dict) and value and all(isinstance(item, dict) for item in value.values()):
        columns = list(dict.fromkeys(key for item in value.values() for key, inner in item.items()
                                     if _is_scalar(inner) and key not in _HIDDEN))
        if columns:
            return [heading, _table(["", *columns], ([key, *(item.get(c) for c in columns)]
                                                      for key, item in value.items()))]
        return [heading, f"({len(value)} entries in the JSON)"]
    if isinstance(value, dict) and value:
        single = {key: item for key, item in value.items() if not _is_multiline(item)}
        blocks = [heading, _table(["", "value"], single.items())] if single else [heading]
        return blocks + _output_blocks({key: item for key, item in value.items() if key not in single}, level + 1)
    return []


def _is_multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value.strip()


def _output_blocks(outputs: Mapping[str, str], level: int) -> list[str]:
    """A heading and a verbatim block per multi-line text (a command's output keeps its lines and columns)."""
    blocks = []
    for name, text in outputs.items():
        fence = "````" if "```" in text else "```"
        blocks += ["#" * level + " " + (f"`{name}`" if name.startswith("taskspace ") else name.replace("_", " ")),
                   f"{fence}text\n{text.rstrip()}\n{fence}"]
    return blocks


def render_result(path: Path) -> str:
    """The page of one results file."""
    document = json.loads(path.read_text(encoding="utf-8"))
    prefix = max((key for key in PRODUCERS if path.stem.startswith(key)), key=len, default=None)
    command, what = PRODUCERS.get(prefix, ("(no producer known)", "")) if prefix else ("(no producer known)", "")
    blocks = [f"# {path.stem}", what,
              f"Reproduce with `TASKSPACE_DATA=../shared/data {command}`; the numbers below are read from "
              f"`benchmarks/results/{path.name}` by `python docs/generate.py`."]
    environment = document.get("environment")
    if isinstance(environment, dict):
        machine = ", ".join(f"{key.replace('_', ' ')} {_cell(value)}" for key, value in environment.items())
        blocks.append(f"Measured on: {machine}.")
    scalars = {key: value for key, value in document.items()
               if key not in _HIDDEN and _is_scalar(value) and not isinstance(value, list)}
    single = {key: value for key, value in scalars.items() if not _is_multiline(value)}
    if single:
        blocks.append(_table(["setting", "value"], single.items()))
    blocks += _output_blocks({key: value for key, value in scalars.items() if key not in single}, 2)
    for key, value in document.items():
        if key in _HIDDEN or key in scalars:
            continue
        blocks += _render_value(key, value, level=2)
    hidden = [key for key in ("matrices", "matrix") if key in document]
    if hidden:
        blocks.append(f"The full matrices ({', '.join(hidden)}) stay in the JSON.")
    return "\n\n".join(block for block in blocks if block) + "\n"


def render_results_index(paths: Sequence[Path]) -> str:
    rows = []
    for path in paths:
        prefix = max((key for key in PRODUCERS if path.stem.startswith(key)), key=len, default=None)
        what = PRODUCERS[prefix][1] if prefix else ""
        rows.append((f"[{path.stem}]({path.stem}.md)", what))
    return ("# Results\n\nEvery benchmark writes one JSON file under `benchmarks/results/`; each page here is "
            "rendered from one of them (`python docs/generate.py`), with the command that reproduces it and "
            "the machine it ran on. Figures are measured on 2 CPU cores unless the page names a GPU.\n\n"
            + _table(["result", "what it measures"], rows) + "\n")


# References from the code --------------------------------------------------------------------------------


def _first_line(obj: Any) -> str:
    """The first line of ``obj``'s docstring, its reStructuredText markup turned into Markdown."""
    lines = (inspect.getdoc(obj) or "").strip().splitlines()
    text = lines[0] if lines else ""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def render_estimators() -> str:
    from taskspace.scoring import get_estimator, list_estimators

    rows = []
    for name in list_estimators():
        estimator = get_estimator(name)
        needs = ", ".join(sorted(estimator.needs))
        options = ", ".join(f"{key}={value}" for key, value in estimator.params.items()) or "–"
        rows.append((f"`{name}`", estimator.description.replace("``", "`"), needs, options, estimator.citation))
    return ("# Estimators\n\nEvery registered estimator (`taskspace.scoring.list_estimators()`), from its registry "
            "entry. Call one as `get_estimator(name)(features, labels, source_probs=..., source_accuracy=...)`; "
            "higher is better for all. Formulas are in the [method](../method.md).\n\n"
            + _table(["name", "what it measures", "needs", "default options", "citation"], rows)
            + "\n\nA new estimator is one decorator away (`@register_estimator(name, citation=...)`); "
            "`taskspace.scoring.check_estimator(name)` runs the contract every estimator here passes.\n")


def _registry_table(names: Sequence[str], lookup: Callable[[str], Any], kind: str) -> str:
    return _table([kind, "description"], ((f"`{name}`", _first_line(lookup(name))) for name in names))


def render_training() -> str:
    from taskspace.kernels import KERNELS, list_kernels
    from taskspace.models import MODELS, list_models
    from taskspace.objectives import OBJECTIVES, list_objectives

    return ("# Objectives, kernels and architectures\n\nFrom their registries "
            "(`list_objectives()`, `list_kernels()`, `list_models()`).\n\n## Hidden objectives\n\n"
            + _registry_table(list_objectives(), OBJECTIVES.get, "objective")
            + "\n\n## Kernels\n\n" + _registry_table(list_kernels(), KERNELS.get, "kernel")
            + "\n\n## Architectures\n\n" + _registry_table(list_models(), MODELS.get, "architecture") + "\n")


def render_protocols() -> str:
    from taskspace.runner.executors import EXECUTORS, list_executors
    from taskspace.transfer import get_protocol, list_protocols

    rows = [(f"`{pattern}`", get_protocol(pattern.replace("{k}", "10")).description.replace(
        "10 labels", "K labels") if "{k}" in pattern else get_protocol(pattern).description) for pattern in
            list_protocols()]
    return ("# Ground-truth protocols and executors\n\n## Protocols\n\nHow a source is reused on a target to "
            "measure the truth (`taskspace.transfer`, one decorator adds another: `@register_protocol`).\n\n"
            + _table(["protocol", "what is measured"], rows)
            + "\n\nOne name means one thing on every kind of run, carried out by the run's own recipe: on a trained "
            "run a probe on the trunk's unit-norm features, and `finetune` the whole modular network with a new "
            "output module; on a zoo run a probe on the module's standardised features, and `finetune` the network "
            "cut at the layer with a new linear head (`--finetune-lr`, `--finetune-epochs`). Every truth cell "
            "records its `recipe` (what is trained, the optimiser, steps or epochs, learning rate, labels per "
            "class, draws); a zoo run measures the built-in protocols and imports others (`--import`)."
            + "\n\n## Executors\n\nHow the cells of a stage run (`--executor`).\n\n"
            + _registry_table(list_executors(), EXECUTORS.get, "executor") + "\n")


def render_cli() -> str:
    from taskspace.cli import build_parser

    parser = build_parser()
    blocks = ["# Command line", "Generated from the parser (`taskspace COMMAND --help` prints the same)."]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                sub.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=100)
                blocks.append(f"## `taskspace {name}`\n\n```text\n{sub.format_help().strip()}\n```")
    return "\n\n".join(blocks) + "\n"


TOUR_BEGIN, TOUR_END = "<!-- tour: generated by docs/generate.py from benchmarks/results/tour.json -->", "<!-- tour end -->"


def render_tour(document: Mapping[str, Any]) -> str:
    """The README's tour: every command of ``tour.json`` with its real output, and the figure it drew."""
    space = str(document["space"]).strip()
    lines = [TOUR_BEGIN, "",
             f"`python benchmarks/tour.py` ran these commands on 2 CPU cores in {document['total_seconds']:.0f} s "
             "(the zoo's 6 networks with 3 epochs each, then the ground truth, take most of it), on this space "
             "(`tour.toml`):", "", "```toml", space, "```", "", "```console"]
    for record in document["commands"]:
        lines.append(f"$ {record['command']}    # {record['seconds']:.1f} s")
        lines += record["output"].splitlines()
        lines.append("")
    lines[-1] = "```"
    lines += ["", f"![The tour's matrix by kernel_ridge_r2, clustered]({document['figure']})", "", TOUR_END]
    return "\n".join(lines)


def readme_with_tour(readme: str, tour: str) -> str:
    """``readme`` with the text between the tour's markers replaced by ``tour``."""
    start, end = readme.find(TOUR_BEGIN), readme.find(TOUR_END)
    if start < 0 or end < start:
        raise SystemExit("README.md lacks the tour's markers; put them back around the tour section")
    return readme[:start] + tour + readme[end + len(TOUR_END):]


ZOO_BEGIN = "<!-- zoo: generated by docs/generate.py from benchmarks/results/open_zoo.json -->"
ZOO_END = "<!-- zoo end -->"


def render_zoo_readme(document: Mapping[str, Any]) -> str:
    """The README's "rank your own models" block: a zoo file and three commands with their real output."""
    readme = document["readme"]
    lines = [ZOO_BEGIN, "```toml", readme["zoo_file"].rstrip(), "```", "", "```console"]
    for item in readme["commands"]:
        lines += [f"$ {item['command']}", item["output"].rstrip(), ""]
    lines[-1] = "```"
    lines += ["", ZOO_END]
    return "\n".join(lines)


def readme_with_block(readme: str, block: str, begin: str, end: str) -> str:
    """The README with the text between ``begin`` and ``end`` (both kept) replaced by ``block``."""
    if begin not in readme or end not in readme:
        return readme
    head, rest = readme.split(begin, 1)
    tail = rest.split(end, 1)[1]
    return head + block + tail


HISTORY_BEGIN = "<!-- history: generated by docs/generate.py from benchmarks/results/history_ranker.json -->"
HISTORY_END = "<!-- history end -->"

#: The datasets of the history benchmark, as the page names them.
_HISTORY_DATA = {
    "model_spider": "Model Spider, 10 ImageNet models x 8 targets, fine-tuning (public)",
    "model_spider_ftd": "Model Spider, 66 fine-tuned models x 7 targets, fine-tuning, truth only (public)",
    "default_finetune": "default space (CIFAR-10, 15 tasks), fine-tuning",
    "default_frozen_all": "default space, frozen probe, all labels",
    "default_frozen_k10": "default space, frozen probe, 10 labels per class",
    "confirm_frozen_all": "confirmation space (15 tasks), frozen probe, all labels",
    "confirm_frozen_k10": "confirmation space, frozen probe, 10 labels per class",
    "open_zoo_finetune_seed0": "open zoo (29 modules x 16 CIFAR-10 targets), fine-tuning at the chosen rate, seed 0",
    "open_zoo_finetune_seed1": "open zoo, fine-tuning, seed 1 (a second measurement)",
}


def _interval(row: Mapping[str, Any], key: str) -> str:
    return f"{row[key]:.3f} [{row[key + '_low']:.3f}, {row[key + '_high']:.3f}]"


def _paired_difference(data: Mapping[str, Any], first: str, second: str) -> str:
    """Mean weighted τ of ``first`` minus ``second`` over the targets both rank, with a 95% t interval."""
    import statistics

    from scipy import stats

    per_target = {(row["ranker"], row["target"]): row["weighted_tau"] for row in data["per_target"]}
    differences = [per_target[(first, target)] - per_target[(second, target)]
                   for ranker, target in per_target if ranker == first and (second, target) in per_target
                   and math.isfinite(per_target[(first, target)]) and math.isfinite(per_target[(second, target)])]
    mean = statistics.mean(differences)
    half = float(stats.t.ppf(0.975, len(differences) - 1)) * statistics.stdev(differences) / math.sqrt(len(differences))
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}] over {len(differences)} targets"


def render_history_results(document: Mapping[str, Any]) -> str:
    """The results of docs/history.md: every dataset's history ranker, zoo prior and best estimator."""
    lines = [HISTORY_BEGIN, "", "| data | ranker | weighted τ [95% bootstrap] | minus the zoo prior [t 95%] | "
             "verdict | Kendall τ | top-1 regret | targets | truth's rank dispersion |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|"]
    sentences = []
    for key, label in _HISTORY_DATA.items():
        if key not in document:
            continue
        data = document[key]
        rows = data["summary"]
        history = next(row for row in rows if row["ranker"] == "history")
        prior = next(row for row in rows if row["ranker"] == "zoo_prior")
        variant = next((row for row in rows if row["ranker"] == "history_logme"), None)
        estimators = [row for row in rows if row["ranker"] not in ("history", "zoo_prior", "history_logme")]
        best = max(estimators, key=lambda row: row["weighted_tau"]) if estimators else None
        for row, name in ((history, "history"), (prior, "zoo prior"),
                          *(((variant, "history_logme (declared variant)"),) if variant else ()),
                          *(((best, f"{best['ranker']} (best single estimator)"),) if best else ())):
            paired = "weighted_tau_vs_prior" in row
            verdict = ""
            if paired:
                low, high = row["weighted_tau_vs_prior_t_low"], row["weighted_tau_vs_prior_t_high"]
                verdict = "above the prior" if low > 0 else "below the prior" if high < 0 else "tie with the prior"
            difference = (f"{row['weighted_tau_vs_prior']:+.3f} [{row['weighted_tau_vs_prior_t_low']:+.3f}, "
                          f"{row['weighted_tau_vs_prior_t_high']:+.3f}]" if paired else "")
            lines.append(f"| {label if row is history else ''} | {name} | {_interval(row, 'weighted_tau')} | "
                         f"{difference} | {verdict} | {row['kendall_tau']:.3f} | {row['top1_regret']:.4f} | "
                         f"{row['targets']} | {data['rank_dispersion']:.3f} |")
        if variant is not None:
            seen = "a confirmation" if key.startswith("open_zoo") else "data seen while the variant was designed"
            sentences.append(f"- {label}: history_logme minus history, paired by target: "
                             f"{_paired_difference(data, 'history_logme', 'history')} ({seen}).")
        if best is not None:
            gap = history["weighted_tau"] - best["weighted_tau"]
            sentences.append(f"- {label}: the history ranker's weighted τ is {gap:+.3f} from the best single "
                             f"estimator's ({best['ranker']}, chosen after the fact on this very data).")
        loso = data.get("leave_one_source_out")
        if loso:
            entries = {row["ranker"]: row for row in loso["summary"]}
            sentences.append(f"- {label}, each source in turn entering with no history: weighted τ "
                             f"{entries['history']['weighted_tau']:.3f} (history) against "
                             f"{entries['zoo_prior']['weighted_tau']:.3f} (zoo prior, the newcomer placed at the "
                             f"others' mean); the newcomer lands {entries['history']['newcomer_rank_error']:.2f} "
                             f"ranks from its true place (history) against "
                             f"{entries['zoo_prior']['newcomer_rank_error']:.2f} (prior).")
    ceiling = document.get("open_zoo_finetune_ceiling")
    if ceiling:
        between = ceiling["between_seeds"]
        sentences.append(f"- The open zoo's noise ceiling: its two fine-tuning seeds agree with weighted τ "
                         f"{between['weighted_tau']:.3f} [{between['weighted_tau_t_low']:.3f}, "
                         f"{between['weighted_tau_t_high']:.3f}] and Kendall τ {between['kendall_tau']:.3f} "
                         f"[{between['kendall_tau_t_low']:.3f}, {between['kendall_tau_t_high']:.3f}] (mean over "
                         "targets, t 95%).")
        rows = {row["ranker"]: row for row in ceiling["seed0_rankers_on_seed1_truth"]["summary"]}
        for name in ("history", "zoo_prior"):
            row = rows[name]
            low, high = row["weighted_tau_vs_remeasurement_t_low"], row["weighted_tau_vs_remeasurement_t_high"]
            reach = "within the ceiling's reach" if high >= 0 else "short of the ceiling"
            sentences.append(f"- Judged on seed 1's truth, {name} read from seed 0 reaches weighted τ "
                             f"{row['weighted_tau']:.3f}; minus seed 0's own truth (the re-measurement) "
                             f"{row['weighted_tau_vs_remeasurement']:+.3f} [{low:+.3f}, {high:+.3f}]: {reach}.")
    spider = document.get("model_spider")
    if spider:
        cost = spider["cost"]
        sentences.append(f"- Importing the Model Spider files as a run and writing its verdict took "
                         f"{cost['import_and_evaluate_run_seconds']:.2f} s; `recommend` took "
                         f"{cost['recommend_seconds']['history']:.3f} s a target by history against "
                         f"{cost['recommend_seconds']['LogME']:.3f} s by LogME alone (the history ranker adds "
                         f"{cost['history_adds_seconds']:.3f} s).")
    open_zoo_cost = document.get("open_zoo_recommend_cost")
    if open_zoo_cost:
        seconds = open_zoo_cost["recommend_seconds"]
        sentences.append(f"- On the open zoo's own run (29 modules, 16 targets), `recommend` took "
                         f"{seconds['history']:.3f} s a target by history against {seconds['logme']:.3f} s by "
                         f"LogME alone (the history ranker adds {open_zoo_cost['history_adds_seconds']:.3f} s).")
    published = document.get("published_model_spider", {})
    if published:
        sentences.append("- Published on the same Model Spider truth (its README): "
                         + ", ".join(f"{name} {value:.3f}" for name, value in published.items()) + ".")
    lines += ["", *sentences, "", HISTORY_END]
    return "\n".join(lines)


CHOICE_BEGIN = "<!-- choice: generated by docs/generate.py from benchmarks/results/default_estimator.json -->"
CHOICE_END = "<!-- choice end -->"


def render_default_estimator(document: Mapping[str, Any]) -> str:
    """What the rule of docs/default-estimator.md chose, from its measurement."""
    decision = document.get("decision")
    if not decision:
        return f"{CHOICE_BEGIN}\n\nNot measured yet.\n\n{CHOICE_END}"
    seconds = document["spaces"]["default"]["score_seconds"]
    ordered = sorted(decision["means"], key=lambda name: -decision["means"][name])
    lines = [CHOICE_BEGIN, "", "| estimator | mean Kendall τ (default space, frozen truths) | minus the leader "
             "[t 95%] | tied with the leader | scoring seconds |", "|---|---:|---:|---|---:|"]
    for name in ordered:
        tie = decision["ties"][name]
        lines.append(f"| {name} | {decision['means'][name]:.3f} | {tie['difference_to_leader']:+.3f} "
                     f"[{tie['low']:+.3f}, {tie['high']:+.3f}] | {'yes' if tie['tied'] else 'no'} | "
                     f"{seconds[name]:.1f} |")
    choice = decision["choice"]
    lines += ["", f"**Choice: `{choice}`** (leader `{decision['leader']}`; tied with it, cheapest first: "
              + ", ".join(f"`{name}`" for name in decision["tied_by_cost"]) + ").", "",
              "| confirming truth | best there | the choice minus the best [t 95%] | confirmed |",
              "|---|---|---:|---|"]
    for truth, entry in decision["confirmations"][choice].items():
        lines.append(f"| {truth} | {entry['best']} | {entry['difference']:+.3f} [{entry['low']:+.3f}, "
                     f"{entry['high']:+.3f}] | {'yes' if entry['confirmed'] else 'no'} |")
    missing = decision.get("confirming_spaces_missing") or []
    if missing:
        lines += ["", f"Not yet measured, so not yet confirming: {', '.join(missing)}."]
    reproduced = document.get("default_reproduced") or {}
    finite = {name: value for name, value in reproduced.items() if value is not None and value == value}
    if finite:
        lines += ["", f"The default space measured again: the {len(finite)} estimators its earlier results hold "
                  f"differ from them by at most {max(finite.values()):.2g} (largest absolute difference)."]
    lines += ["", CHOICE_END]
    return "\n".join(lines)


INVERT_BEGIN = "<!-- invert: generated by docs/generate.py from benchmarks/results/invert_study.json -->"
INVERT_END = "<!-- invert end -->"


def render_invert_results(document: Mapping[str, Any]) -> str:
    """docs/compose.md's inversion results: the drop per order and recipe, paired over tasks, and CKA."""
    rows = document["rows"]

    def accuracy(recipe: str, order: str | None) -> float:
        chosen = [row["test_accuracy"] for row in rows if row["recipe"] == recipe
                  and ("-".join(map(str, row["order"])) == order if order
                       else row["order"] != sorted(row["order"]))]
        return sum(chosen) / len(chosen)

    table = _table(["order", "modular accuracy", "modular drop", "end-to-end accuracy", "end-to-end drop",
                    "end to end minus modular [95% t]", "BCa bootstrap", "verdict"],
                   [(row["order"], f"{accuracy('modular', None if row['order'] == 'all five' else row['order']):.3f}",
                     f"{100 * row['modular_drop']:.1f}",
                     f"{accuracy('e2e', None if row['order'] == 'all five' else row['order']):.3f}",
                     f"{100 * row['e2e_drop']:.1f}",
                     f"{100 * row['e2e_minus_modular']:+.1f} [{100 * row['t_low']:+.1f}, {100 * row['t_high']:+.1f}]",
                     f"[{100 * row['boot_low']:+.1f}, {100 * row['boot_high']:+.1f}]", row["verdict"])
                    for row in document["paired"]])
    identity = "-".join(map(str, sorted(rows[0]["order"])))
    cka = document["cka"]
    lines = [INVERT_BEGIN, "", f"Measured by `python benchmarks/invert_study.py` on the {len(document['tasks'])} tasks of the default "
             f"space ({document['epochs']} epochs, width {document['width']}, {document['seconds'] / 60:.0f} "
             f"minutes on 2 CPU cores). In the original order ({identity}, also through `compose invert`, so the "
             f"output module is refitted the same way) the modular nets reach {accuracy('modular', identity):.3f}, "
             f"the end-to-end nets {accuracy('e2e', identity):.3f}. Drops are in points of test accuracy from "
             "that order, averaged over the tasks; intervals are paired by task.", "", table, ""]
    for recipe, name in (("modular", "Modular"), ("e2e", "End to end")):
        row = cka[recipe]
        lines.append(f"- {name}: Spearman ρ between the moved modules' mean CKA and the drop "
                     f"{row['spearman_cka_vs_drop']:.2f} over {row['pairs']} (task, order) pairs, permutation p "
                     f"{row['permutation_p']:.4f}: CKA {'predicts' if row['predicts'] else 'does not predict'} "
                     "which orders survive.")
    return "\n".join([*lines, "", INVERT_END])


def pages() -> dict[Path, str]:
    """Every generated page: path -> text."""
    generated = {
        DOCS / "reference" / "estimators.md": render_estimators(),
        DOCS / "reference" / "training.md": render_training(),
        DOCS / "reference" / "protocols.md": render_protocols(),
        DOCS / "reference" / "cli.md": render_cli(),
    }
    results = sorted(RESULTS.glob("*.json"))
    generated[DOCS / "results" / "index.md"] = render_results_index(results)
    for path in results:
        generated[DOCS / "results" / f"{path.stem}.md"] = render_result(path)
    tour = RESULTS / "tour.json"
    if tour.is_file():
        readme = ROOT / "README.md"
        tour_text = render_tour(json.loads(tour.read_text(encoding="utf-8")))
        generated[readme] = readme_with_tour(readme.read_text(encoding="utf-8"), tour_text)
    zoo = RESULTS / "open_zoo.json"
    if zoo.is_file():
        readme = ROOT / "README.md"
        text = generated.get(readme, readme.read_text(encoding="utf-8"))
        generated[readme] = readme_with_block(text, render_zoo_readme(json.loads(zoo.read_text(encoding="utf-8"))),
                                              ZOO_BEGIN, ZOO_END)
    readme = ROOT / "README.md"
    generated[readme] = readme_with_block(generated.get(readme, readme.read_text(encoding="utf-8")),
                                          render_findings(RESULTS), FINDINGS_BEGIN, FINDINGS_END)
    choice = RESULTS / "default_estimator.json"
    if choice.is_file():
        page = DOCS / "default-estimator.md"
        generated[page] = readme_with_block(page.read_text(encoding="utf-8"), render_default_estimator(
            json.loads(choice.read_text(encoding="utf-8"))), CHOICE_BEGIN, CHOICE_END)
    history = RESULTS / "history_ranker.json"
    if history.is_file():
        page = DOCS / "history.md"
        generated[page] = readme_with_block(page.read_text(encoding="utf-8"), render_history_results(
            json.loads(history.read_text(encoding="utf-8"))), HISTORY_BEGIN, HISTORY_END)
    invert = RESULTS / "invert_study.json"
    if invert.is_file():
        page = DOCS / "compose.md"
        generated[page] = readme_with_block(page.read_text(encoding="utf-8"), render_invert_results(
            json.loads(invert.read_text(encoding="utf-8"))), INVERT_BEGIN, INVERT_END)
    return generated


def stale(generated: Mapping[Path, str]) -> list[Path]:
    """Pages whose committed text differs from the generated one (or that are missing)."""
    return [path for path, text in generated.items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which pages are stale")
    arguments = parser.parse_args()
    generated = pages()
    if arguments.check:
        out_of_date = stale(generated)
        for path in out_of_date:
            print(f"stale: {path.relative_to(ROOT)}; run `python docs/generate.py`", file=sys.stderr)
        return 1 if out_of_date else 0
    for path, text in generated.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"{len(generated)} pages written under {DOCS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
