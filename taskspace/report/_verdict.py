"""The verdict of a report, for every kind of run: each ranker beside the target-blind baselines.

The rows are those of :func:`taskspace.baselines.run_verdict` (``evaluation.csv``): every estimator, the
zoo prior, the run's other baselines and the history ranker, each with its mean Kendall τ and bootstrap
interval, weighted τ, its paired difference to the zoo prior (t interval) and the top-1 regret; then the
truth's rank dispersion, and per protocol the ranker that does best and whether it clears the prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from taskspace.baselines import BASELINES
from taskspace.report._document import Block, BulletList, Code, Paragraph, Table

__all__ = ["verdict_blocks", "finite"]

_MISSING = "n/a"


def finite(value: Any) -> float:
    """``value`` as a float, or -inf where it is none or not finite (so it sorts last)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return -math.inf
    return number if math.isfinite(number) else -math.inf


def _number(value: Any, digits: int = 3) -> str:
    number = finite(value)
    return f"{number:.{digits}f}" if math.isfinite(number) else _MISSING


def _paired(row: dict[str, Any]) -> str:
    if not math.isfinite(finite(row.get("weighted_tau_vs_prior"))):
        return _MISSING
    return (f"{row['weighted_tau_vs_prior']:+.3f} [{row['weighted_tau_vs_prior_low']:+.3f}, "
            f"{row['weighted_tau_vs_prior_high']:+.3f}]")


def verdict_blocks(verdict: Sequence[dict[str, Any]], *, estimator: str, square: bool) -> list[Block]:
    """The verdict's paragraph, table, rank dispersions and best rankers.

    Args:
        verdict: the rows of the run's verdict.
        estimator: the estimator the report ranks by.
        square: the run's modules are its targets' own networks (a trained run): their own task is left out.
    """
    protocols = list(dict.fromkeys(row["protocol"] for row in verdict))
    ordered = sorted(verdict, key=lambda row: (protocols.index(row["protocol"]),
                                               -finite(row["kendall_tau"]), row["estimator"]))
    rows = tuple((row["estimator"] + (" (baseline)" if row["estimator"] in BASELINES else ""), row["protocol"],
                  f"{_number(row['kendall_tau'])} [{_number(row['kendall_tau_low'])}, "
                  f"{_number(row['kendall_tau_high'])}]", _number(row["weighted_tau"]),
                  _paired(row), _number(row["top1_regret"], 4), str(row.get("targets", ""))) for row in ordered)
    blocks: list[Block] = [
        Paragraph(("Per target, the modules ranked by each score are compared with their ranking by the measured "
                   "accuracy" + (" (the target's own module left out)" if square else "") + ": Kendall τ, weighted "
                   "τ and the top-1 regret, means over targets with 95% bootstrap intervals. The baselines never look "
                   "at the target's images: ", Code("zoo_prior"),
                   " is a module's mean measured accuracy on the other targets" + (
                       " (its own task left out)" if square else "") + ", ", Code("source_size"),
                   " its parameters up to the layer, ", Code("source_accuracy"),
                   " the network's accuracy on its own task where it is known. ", Code("history"),
                   " ranks from the other targets' truth and the target's estimator values, weighed as learned on the "
                   "other targets (it never reads the target's truth). Beside each weighted τ, its difference to the "
                   "zoo prior's, paired by target, with a 95% t interval. The report ranks by ", Code(estimator), ".")),
        Table(("score", "protocol", "mean Kendall τ [95% CI]", "weighted τ", "weighted τ − zoo prior [t 95%]",
               "top-1 regret", "targets"), rows, numeric=(False, False, True, True, True, True, True)),
    ]
    for protocol in protocols:
        first = next(row for row in verdict if row["protocol"] == protocol)
        if math.isfinite(finite(first.get("rank_dispersion"))):
            blocks.append(Paragraph((f"{protocol}: the truth's rank dispersion (mean Kendall τ between targets' true "
                                     f"orders) is {_number(first['rank_dispersion'])}; a ranker that never looks at "
                                     "the target earns about that much τ for free.",)))
    lines = []
    for protocol in protocols:
        judged = [row for row in verdict if row["protocol"] == protocol and math.isfinite(finite(row["kendall_tau"]))]
        if not judged:
            continue
        best = max(judged, key=lambda row: finite(row["kendall_tau"]))
        prior = next((row for row in judged if row["estimator"] == "zoo_prior"), None)
        text = f" ranks best (τ {_number(best['kendall_tau'])})"
        if prior is not None and best["estimator"] != "zoo_prior":
            beaten = finite(best["kendall_tau_low"]) > finite(prior["kendall_tau"])
            text += (f"; the zoo prior's τ {_number(prior['kendall_tau'])} is "
                     + ("below its interval." if beaten else "inside or above its interval: no clear gain over it."))
        lines.append((f"{protocol}: ", Code(best["estimator"]), text))
    if lines:
        blocks.append(BulletList(tuple(lines)))
    return blocks
