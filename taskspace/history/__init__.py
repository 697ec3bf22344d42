"""Ranking sources for a target with the run's measured history, and the field's protocol to judge it.

Pure numpy and scipy (no torch): the history ranker (:func:`rank_with_history`), its signals, and the
model-selection protocol (weighted τ, regrets, the leave-one-target-out zoo prior, the truth's rank
dispersion, paired intervals, leave-one-source-out). ``docs/history.md`` states the rule.
"""

from taskspace.history._files import History, read_history, read_long_csv
from taskspace.history._matrix import NOT_EVIDENCE, history_matrix, history_ranking
from taskspace.history._protocol import (
    HISTORY,
    ZOO_PRIOR,
    TargetResult,
    history_protocol,
    leave_one_source_out,
    rank_dispersion,
    summarise,
    target_result,
)
from taskspace.history._ranker import PRIOR, HistoryRanking, rank_with_history
from taskspace.history._signals import centred_ranks, history_prior, raw_prior, standardised_truth

__all__ = [
    "HISTORY",
    "History",
    "PRIOR",
    "ZOO_PRIOR",
    "HistoryRanking",
    "NOT_EVIDENCE",
    "TargetResult",
    "centred_ranks",
    "history_matrix",
    "history_prior",
    "history_protocol",
    "history_ranking",
    "leave_one_source_out",
    "rank_dispersion",
    "rank_with_history",
    "raw_prior",
    "read_history",
    "read_long_csv",
    "standardised_truth",
    "summarise",
    "target_result",
]
