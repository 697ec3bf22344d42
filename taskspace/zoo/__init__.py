"""Any model, any layer: rank the modules of a user's own pretrained networks (or features) for a target.

- :mod:`taskspace.zoo.spec`: the zoo file (TOML), checked without torch.
- :mod:`taskspace.zoo.networks`: building a source's network, loading its weights safely, reading its layers.
- :mod:`taskspace.zoo.targets`: the targets (a task space's tasks, a whole dataset) and their images.
- :mod:`taskspace.zoo.store`: forward passes kept by content; features extracted elsewhere, checked.
- :mod:`taskspace.zoo.run`: :class:`ZooRun`, the run folder's owner.
- :mod:`taskspace.zoo.stages`: scoring and the ground truth.
"""

from taskspace.zoo.spec import SourceSpec, ZooSpec, module_id, read_zoo_file, split_module_id

__all__ = ["SourceSpec", "ZooSpec", "read_zoo_file", "module_id", "split_module_id"]
