"""What the training data path costs: batches normalised from uint8 on the device against a float32 split.

The trainers keep a split as uint8 pixels and normalise each batch when a step needs it, with each
epoch's order and crops drawn up front (taskspace.training.trainers.plan_epoch). The baseline is the
path before it, run in the same process: the whole split normalised to float32 once, then each batch
indexed and cropped as the step comes. Measured per epoch of the images a task trains on (a binary
CIFAR-10 task: 9,000), best of several interleaved repeats, with the split's memory either way.

    TASKSPACE_DATA=../shared/data python benchmarks/data_path.py
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import print_table, require_cifar, save

from taskspace.data import random_crop_flip, read_cifar10
from taskspace.data.augment import apply_crop_flip
from taskspace.training.seeds import torch_generator
from taskspace.training.tensors import channel_statistics, minibatch_indices, to_tensor_split
from taskspace.training.trainers import plan_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=9000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    arguments = parser.parse_args()
    dataset = read_cifar10(require_cifar())
    split = dataset.train.take(range(arguments.images))
    mean, std = channel_statistics(split.images)
    tensors = to_tensor_split(split, mean=mean, std=std)
    whole = tensors.images  # the float32 split of the former path, made once

    def float_split_epoch() -> None:
        generator = torch_generator(0, "e2e", 0)
        for rows in minibatch_indices(len(tensors), arguments.batch_size, generator=generator, drop_last=True):
            random_crop_flip(whole[rows], generator=generator).contiguous(memory_format=torch.channels_last)

    def uint8_split_epoch() -> None:
        plan = plan_epoch(len(tensors), arguments.batch_size, generator=torch_generator(0, "e2e", 0), augment=True,
                          device=tensors.device)
        for rows, crops in zip(plan.batches, plan.crops, strict=True):
            assert crops is not None
            apply_crop_flip(tensors.images_at(rows), crops).contiguous(memory_format=torch.channels_last)

    timings: dict[str, list[float]] = {"float32 split": [], "uint8 split": []}
    for _ in range(arguments.repeats):
        for name, epoch in (("float32 split", float_split_epoch), ("uint8 split", uint8_split_epoch)):
            began = time.perf_counter()
            epoch()
            timings[name].append(time.perf_counter() - began)
    best = {name: min(values) for name, values in timings.items()}
    memory = {"float32 split": whole.numel() * whole.element_size(),
              "uint8 split": tensors.pixels.numel() * tensors.pixels.element_size()}
    rows = [{"path": name, "epoch_seconds": best[name], "split_mib": memory[name] / 2**20,
             "seconds_over_float32": best[name] / best["float32 split"]} for name in timings]
    path = save("data_path", {"images": arguments.images, "batch_size": arguments.batch_size,
                              "repeats": arguments.repeats, "rows": rows, "timings": timings})
    print_table(["path", "epoch s (best)", "split MiB", "time / float32"],
                [[r["path"], r["epoch_seconds"], r["split_mib"], r["seconds_over_float32"]] for r in rows])
    print(f"written {path}")


if __name__ == "__main__":
    main()
