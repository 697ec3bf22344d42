"""Representation similarity between modules: CKA of every pair of the zoo, and its link to transfer.

::

    linear_cka(x, y)                                   # x (n, d1), y (n, d2) on the same inputs
    similarity = module_similarity(run)                # TransferabilityMatrix "cka_linear", tasks x tasks
    similarity_vs_transfer(similarity, truth)          # Spearman ρ + Mantel p-value

Everything public is re-exported here; the modules below are implementation detail. The CKA functions
are pure numpy; the module functions (which run networks) import torch when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskspace.similarity.cka import (
    KERNELS,
    RBF_MAX_SAMPLES,
    cka_matrix,
    linear_cka,
    rbf_cka,
)

if TYPE_CHECKING:
    from taskspace.similarity.modules import (
        cka_estimator_name,
        module_similarity,
        similarity_vs_transfer,
        stored_similarity,
        write_similarity,
    )

__all__ = [
    "KERNELS",
    "RBF_MAX_SAMPLES",
    "cka_estimator_name",
    "cka_matrix",
    "linear_cka",
    "module_similarity",
    "rbf_cka",
    "similarity_vs_transfer",
    "stored_similarity",
    "write_similarity",
]

_MODULE_NAMES = frozenset({"cka_estimator_name", "module_similarity", "similarity_vs_transfer", "stored_similarity",
                        "write_similarity"})


def __getattr__(name: str) -> Any:
    # torch takes a second or more to import; only pay for it when modules are compared.
    if name in _MODULE_NAMES:
        from taskspace.similarity import modules

        return getattr(modules, name)
    raise AttributeError(f"module 'taskspace.similarity' has no attribute '{name}'")
