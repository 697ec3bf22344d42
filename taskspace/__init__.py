"""taskspace: transfer-learning task-space analysis with modular networks trained by pairwise kernels."""

__version__ = "0.1.0"

__all__ = ["__version__"]
