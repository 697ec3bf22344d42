"""Named training recipes of the benchmarks (TrainConfig options) and the array-cache reader.

The first recipe is TrainConfig's own default; the sweep in objective_sweep.py measured the rest.
"""

from __future__ import annotations

from typing import Any

#: Recipe name -> TrainConfig options. The first is the default recipe of TrainConfig.
RECIPES: dict[str, dict[str, Any]] = {
    "upper_tri_alignment": {},
    "alignment": {"objective": "alignment"},
    "nmse": {"objective": "nmse"},
    "raw": {"objective": "raw"},
    "log_contrastive": {"objective": "log_contrastive"},
    "upper_tri_alignment_wd5e-5": {"weight_decay": 5e-5},
    "upper_tri_alignment_b512_lr1": {"batch_size": 512, "lr": 1.0},
    "supcon_t0.05": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.05}},
    "supcon_t0.1": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.1}},
    "supcon_t0.2": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.2}},
    "supcon_t0.5": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.5}},
    "supcon_t0.1_lr0.2": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.1},
                          "lr": 0.2},
    "supcon_t0.1_lr1": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.1},
                        "lr": 1.0},
    "supcon_t0.1_wd5e-5": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.1},
                           "weight_decay": 5e-5},
    "supcon_t0.1_lr0.2_wd5e-5": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.1},
                                 "lr": 0.2, "weight_decay": 5e-5},
    "supcon_t0.05_lr0.2_wd5e-5": {"objective": "supervised_contrastive",
                                  "objective_params": {"temperature": 0.05}, "lr": 0.2, "weight_decay": 5e-5},
    "supcon_t0.05_lr0.2": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.05},
                           "lr": 0.2},
    "supcon_t0.1_lr0.1_wd5e-5": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.1},
                                 "lr": 0.1, "weight_decay": 5e-5},
    "supcon_t0.1_lr0.2_wd0": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.1},
                              "lr": 0.2, "weight_decay": 0.0},
    "supcon_t0.1_lr0.2_wd5e-5_b256": {"objective": "supervised_contrastive",
                                      "objective_params": {"temperature": 0.1}, "lr": 0.2, "weight_decay": 5e-5,
                                      "batch_size": 256},
    "alignment_wd5e-5": {"objective": "alignment", "weight_decay": 5e-5},
    "upper_tri_alignment_wd0": {"weight_decay": 0.0},
    "upper_tri_alignment_wd5e-5_lr0.2": {"weight_decay": 5e-5, "lr": 0.2},
    "supcon_t0.03_lr0.2": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.03},
                           "lr": 0.2},
    "supcon_t0.05_lr0.1": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.05},
                           "lr": 0.1},
    "supcon_t0.05_lr0.3": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.05},
                           "lr": 0.3},
    "supcon_t0.05_lr0.2_wd0": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.05},
                               "lr": 0.2, "weight_decay": 0.0},
    "supcon_t0.05_lr0.2_b64": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.05},
                               "lr": 0.2, "batch_size": 64},
    "supcon_t0.05_lr0.1_wd1e-4": {"objective": "supervised_contrastive",
                                  "objective_params": {"temperature": 0.05}, "lr": 0.1, "weight_decay": 1e-4},
    "supcon_t0.05_lr0.2_wd2e-4": {"objective": "supervised_contrastive",
                                  "objective_params": {"temperature": 0.05}, "lr": 0.2, "weight_decay": 2e-4},
    "supcon_t0.07_lr0.15": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.07},
                            "lr": 0.15},
    "e2e": {"mode": "e2e"},
    "e2e_wd0": {"mode": "e2e", "weight_decay": 0.0},
    "e2e_lr0.2_wd0": {"mode": "e2e", "lr": 0.2, "weight_decay": 0.0},
    "e2e_wd5e-5": {"mode": "e2e", "weight_decay": 5e-5},
    "e2e_lr0.2_wd5e-5": {"mode": "e2e", "lr": 0.2, "weight_decay": 5e-5},
    "e2e_lr0.1": {"mode": "e2e", "lr": 0.1},
    "e2e_lr0.2": {"mode": "e2e", "lr": 0.2},
}


def load_arrays(path: str):  # type: ignore[no-untyped-def]
    """An ImageDataset from a taskspace CIFAR-10 array cache file."""
    from taskspace.data import read_cifar10_cache_file

    return read_cifar10_cache_file(path)
