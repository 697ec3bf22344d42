"""Training: hidden modules with the pairwise kernel objective, output module, end to end, fine-tune."""

from taskspace.training.checkpoints import load_hidden_from, load_model, save_model
from taskspace.training.run import (
    build_model,
    fit_output_module,
    prepare_splits,
    train_task,
)
from taskspace.training.tensors import TensorSplit, channel_statistics, to_tensor_split
from taskspace.training.trainers import (
    OptimizerSettings,
    evaluate_accuracy,
    extract_features,
    fit_linear,
    train_end_to_end,
    train_hidden_module,
    train_output_module,
)

__all__ = [
    "OptimizerSettings",
    "TensorSplit",
    "build_model",
    "channel_statistics",
    "evaluate_accuracy",
    "extract_features",
    "fit_linear",
    "fit_output_module",
    "load_hidden_from",
    "load_model",
    "prepare_splits",
    "save_model",
    "to_tensor_split",
    "train_end_to_end",
    "train_hidden_module",
    "train_output_module",
    "train_task",
]
