"""What the commands print: paths as the user would type them, the verdict, a recommendation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["shown_path", "print_import", "print_verdict", "save_recommendation"]


def shown_path(path: str | Path) -> str:
    """A path as printed: relative to the working folder when it lies inside it."""
    absolute = Path(path).absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def print_verdict(rows: list[dict[str, Any]], *, baselines: tuple[str, ...] = ()) -> None:
    """The verdict as a table, best first per protocol; ``baselines`` are marked as such. Where the rows
    carry a paired difference to the zoo prior, it is shown with its t interval; the truth's rank
    dispersion and the cells used are said per protocol."""
    paired = any(_finite(row.get("weighted_tau_vs_prior")) for row in rows)
    width = max([22, *(len(row["estimator"]) + (11 if row["estimator"] in baselines else 0) for row in rows)])
    header = f"{'estimator':<{width}} {'protocol':<12} {'kendall_tau [95% CI]':<26} {'weighted_tau':>12} {'regret':>8}"
    print(header + (f"  {'top-3':>6}  {'weighted_tau - zoo_prior [t 95%]':<32}" if paired else ""))
    for row in sorted(rows, key=lambda r: (r["protocol"], -_sortable(r["kendall_tau"]))):
        interval = f"{row['kendall_tau']:.3f} [{row['kendall_tau_low']:.3f}, {row['kendall_tau_high']:.3f}]"
        name = row["estimator"] + (" (baseline)" if row["estimator"] in baselines else "")
        line = (f"{name:<{width}} {row['protocol']:<12} {interval:<26} {row['weighted_tau']:>12.3f} "
                f"{row['top1_regret']:>8.4f}")
        if paired:
            difference = (f"{row['weighted_tau_vs_prior']:+.3f} [{row['weighted_tau_vs_prior_low']:+.3f}, "
                          f"{row['weighted_tau_vs_prior_high']:+.3f}]" if _finite(row.get("weighted_tau_vs_prior"))
                          else "")
            line += f"  {row.get('top3_regret', float('nan')):>6.4f}  {difference:<32}"
        print(line.rstrip())
    for protocol in dict.fromkeys(row["protocol"] for row in rows):
        first = next(row for row in rows if row["protocol"] == protocol)
        if _finite(first.get("rank_dispersion")):
            print(f"{protocol}: rank dispersion of the truth {first['rank_dispersion']:.3f} (mean Kendall τ between "
                  f"targets' true orders); {int(first.get('cells', 0))} cells over {int(first['targets'])} targets")


def _finite(value: Any) -> bool:
    return isinstance(value, float | int) and value == value and abs(value) != float("inf")


def save_recommendation(run: Any, result: Any, *, every_source: bool) -> int:
    """Write a recommendation into its run, print it and where it went."""
    from taskspace.io import write_json

    path = run.recommendation_file(result.target, result.estimator)
    with run.writing():
        write_json(path, result.to_json_dict())
    _print_recommendation(result, every_source=every_source)
    print(f"-> {shown_path(path)}")
    return 0


def _print_recommendation(result: Any, *, every_source: bool) -> None:
    where = ("in the zoo" if result.in_zoo else
             f"new task, {len(result.ranking)} modules scored by forward passes in {result.score_seconds:.1f} s")
    quality = (f"; mean Kendall τ {result.estimator_kendall_tau:.3f} vs {result.protocol} on the run's other targets"
               if result.estimator_kendall_tau is not None else "")
    print(f"{result.target} ({where}): sources ranked by {result.estimator}{quality}")
    if result.explanation is not None:
        print(result.explanation)
    if result.fit is not None:
        fit = result.fit
        read = "score" if fit.predictor in ("score", result.estimator) else f"{fit.predictor} score"
        print(f"predicted {result.protocol} accuracy = {fit.intercept:.3f} + {fit.slope:.3f} x {read} "
              f"(R² {fit.r2:.2f} over {fit.cells} cells of other targets; {fit.level:.0%} interval)")
    if result.warning() is not None:
        print(result.warning())
    shown = result.ranking if every_source else result.top
    width = max([22, *(len(row.source) for row in shown)])  # zoo module ids can be long: the column follows
    print(f"{'rank':>4}  {'source':<{width}} {'score':>9}  {'predicted [interval]':<22} {'measured':>8}  reason")
    for row in shown:
        predicted = (f"{row.predicted_accuracy:.3f} [{row.predicted_low:.3f}, {row.predicted_high:.3f}]"
                     if row.predicted_accuracy == row.predicted_accuracy else "n/a (no ground truth)")
        measured = f"{row.measured_accuracy:.4f}" if row.measured_accuracy is not None else "-"
        print(f"{row.rank:>4}  {row.source:<{width}} {row.score:>9.4f}  {predicted:<22} {measured:>8}  {row.reason}")
    best, worst = result.measured_best(), result.measured_worst()
    if best is not None and worst is not None:
        first = result.ranking[0]
        print(f"measured ({result.measured_protocol}): recommended {first.source} {first.measured_accuracy:.4f}; "
              f"best {best.source} {best.measured_accuracy:.4f} (rank {best.rank}); "
              f"worst {worst.source} {worst.measured_accuracy:.4f} (rank {worst.rank})")


def _sortable(value: float) -> float:
    return value if value == value else -2.0


def print_import(run: Any, result: dict[str, Any]) -> None:
    """What ``truth --import`` added, and what it kept or replaced of earlier imports."""
    print(f"{len(result['rows'])} imported accuracies -> {shown_path(run.path('truth'))}"
          + (f" ({result['kept']} imported earlier kept; {result['given_again']} given again, "
             f"{result['changed']} of them with a new value)" if result["kept"] or result["given_again"] else ""))
