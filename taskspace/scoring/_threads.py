"""Thread pools while an estimator runs: one BLAS / OpenMP thread.

An estimator solves a few small dense problems per (source, target) cell (a d x d eigendecomposition,
a 129-parameter Newton step, a 10-component mixture). At these sizes the threads of OpenBLAS and of
the OpenMP runtimes (scikit-learn's, and torch's, whose idle workers keep spinning after a forward
pass) cost more in synchronisation than they gain: on two cores the estimators of a cell together
ran 8.4 times faster on one thread with 500 target images, and 1.9 times with all 9,000
(``benchmarks/scoring_threads.py``; a few, such as kNN on 9,000 images, lose 10 to 20%). Every
:class:`~taskspace.scoring.Estimator` call therefore runs inside :func:`single_threaded`; parallelism
comes from scoring cells side by side (the grid's process-pool and Ray executors).
"""

from __future__ import annotations

from typing import Any

__all__ = ["single_threaded"]

#: One controller for the process (building one scans the loaded libraries: about 1 ms; using it: 20 us).
_CONTROLLER: Any = None


def single_threaded() -> Any:
    """A context manager that limits every BLAS and OpenMP pool of the process to one thread."""
    global _CONTROLLER
    if _CONTROLLER is None:
        # load the pools the estimators use before the controller lists them
        import scipy.linalg  # noqa: F401
        import sklearn.linear_model  # noqa: F401
        import sklearn.mixture  # noqa: F401
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)
