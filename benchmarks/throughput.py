"""Training throughput of modular vs end-to-end steps, and the cost of the pairwise objective.

One training step on a batch of real CIFAR-10 images with the default CPU architecture:
- end to end: forward through the whole net, cross-entropy, backward, SGD step;
- modular: forward through the hidden module, gram of the cosine kernel, upper-triangle alignment,
  backward, SGD step;
- the loss alone: cross-entropy head (φ + linear + CE) vs the kernel gram + objective, forward and
  backward on the same trunk output.
Both kinds of step are timed interleaved, many repeats, median taken; ratios are against end to end.

    TASKSPACE_DATA=../shared/data python benchmarks/throughput.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import print_table, require_cifar, save
from torch.nn import functional

from taskspace.data import random_crop_flip, read_cifar10
from taskspace.kernels import get_kernel
from taskspace.models import get_model
from taskspace.objectives import get_objective
from taskspace.training.tensors import channel_statistics, to_tensor_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--architecture", default="small_cnn")
    arguments = parser.parse_args()
    dataset = read_cifar10(require_cifar())
    mean, std = channel_statistics(dataset.train.images[:5000])
    split = to_tensor_split(dataset.train.take(range(arguments.batch_size * 4)), mean=mean, std=std)
    generator = torch.Generator().manual_seed(0)
    kernel, objective = get_kernel("cosine_relu"), get_objective("upper_tri_alignment")
    contrastive = get_objective("supervised_contrastive", temperature=0.05)

    torch.manual_seed(0)
    net = get_model(arguments.architecture, num_classes=10).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    labels = split.labels[: arguments.batch_size]

    def batch() -> torch.Tensor:
        images = split.images_at(slice(0, arguments.batch_size))
        return random_crop_flip(images, generator=generator).contiguous(memory_format=torch.channels_last)

    def end_to_end_step() -> None:
        loss = functional.cross_entropy(net(batch()), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def modular_step() -> None:
        loss = -objective(kernel(net.hidden[0](batch())), labels, k_min=kernel.k_min, k_max=kernel.k_max)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def modular_contrastive_step() -> None:
        loss = -contrastive(kernel(net.hidden[0](batch())), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    trunk_output = net.trunk(split.images[: arguments.batch_size]).detach()

    def cross_entropy_loss() -> None:
        output = trunk_output.clone().requires_grad_(True)
        functional.cross_entropy(net.output(output), labels).backward()

    def pairwise_loss() -> None:
        output = trunk_output.clone().requires_grad_(True)
        (-objective(kernel(output), labels, k_min=0.0, k_max=1.0)).backward()

    def contrastive_loss() -> None:
        output = trunk_output.clone().requires_grad_(True)
        (-contrastive(kernel(output), labels)).backward()

    timings = _interleaved({"e2e_step": end_to_end_step, "modular_step": modular_step,
                            "modular_contrastive_step": modular_contrastive_step,
                            "cross_entropy_loss": cross_entropy_loss, "pairwise_loss": pairwise_loss,
                            "contrastive_loss": contrastive_loss},
                           repeats=arguments.repeats)
    batch_size = arguments.batch_size
    results = {
        name: {"median_ms": 1000 * statistics.median(values), "min_ms": 1000 * min(values),
               "images_per_second": batch_size / statistics.median(values)}
        for name, values in timings.items()
    }
    step_ratio = results["modular_step"]["median_ms"] / results["e2e_step"]["median_ms"]
    loss_overhead = (results["pairwise_loss"]["median_ms"] - results["cross_entropy_loss"]["median_ms"])
    contrastive_overhead = results["contrastive_loss"]["median_ms"] - results["cross_entropy_loss"]["median_ms"]
    summary = {
        "modular_over_e2e_step_time": step_ratio,
        "objective_extra_ms_per_step": loss_overhead,
        "objective_extra_share_of_e2e_step": loss_overhead / results["e2e_step"]["median_ms"],
        "contrastive_modular_over_e2e_step_time": (
            results["modular_contrastive_step"]["median_ms"] / results["e2e_step"]["median_ms"]),
        "contrastive_objective_extra_ms_per_step": contrastive_overhead,
        "contrastive_objective_extra_share_of_e2e_step": contrastive_overhead / results["e2e_step"]["median_ms"],
    }
    path = save("throughput", {"batch_size": batch_size, "repeats": arguments.repeats,
                               "architecture": arguments.architecture, "timings": results, "summary": summary})
    print_table(["measurement", "median ms", "images/s", "ratio to e2e step"],
                [[name, value["median_ms"], value["images_per_second"],
                  value["median_ms"] / results["e2e_step"]["median_ms"]] for name, value in results.items()])
    print(f"pairwise objective adds {loss_overhead:.2f} ms to a step "
          f"({100 * summary['objective_extra_share_of_e2e_step']:.1f}% of an end-to-end step); supervised contrastive "
          f"{contrastive_overhead:.2f} ms ({100 * summary['contrastive_objective_extra_share_of_e2e_step']:.1f}%); "
          f"written {path}")


def _interleaved(functions: dict, *, repeats: int) -> dict[str, list[float]]:
    for function in functions.values():  # warm-up
        function()
        function()
    timings: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            timings[name].append(time.perf_counter() - started)
    return timings


if __name__ == "__main__":
    main()
