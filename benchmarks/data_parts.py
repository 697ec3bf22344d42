"""CIFAR-10 in compressed parts small enough to travel to a remote GPU machine, and back into one folder.

A remote machine that receives the working tree in calls of limited size (64 MiB here) takes the
dataset in a few parts: ``pack`` compresses each CIFAR-10 batch file (LZMA with a delta filter,
about 70% of the bytes) into ``part1``, ``part2``, … of at most ``--max-mib`` each, with a manifest
of SHA-256 sums; ``unpack`` (run there) decompresses every part found into one
``cifar-10-batches-py`` folder and checks each file against the manifest before it is used.

    TASKSPACE_DATA=../shared/data python benchmarks/data_parts.py pack --out .gpu-data --max-mib 50
    python benchmarks/data_parts.py unpack --parts .gpu-data --to .gpu-data/data
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import sys
from pathlib import Path

from _common import require_cifar

#: Delta over neighbouring bytes (pixels of one row), then LZMA2.
FILTERS = [{"id": lzma.FILTER_DELTA, "dist": 1}, {"id": lzma.FILTER_LZMA2, "preset": 6}]
FILES = ("batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
         "test_batch")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(out: Path, max_bytes: int) -> list[Path]:
    """Compress the CIFAR-10 files into parts of at most ``max_bytes``; returns the part folders."""
    source = Path(require_cifar()) / "cifar-10-batches-py"
    parts: list[list[tuple[str, bytes, str]]] = [[]]
    for name in FILES:
        raw = (source / name).read_bytes()
        packed = lzma.compress(raw, format=lzma.FORMAT_XZ, filters=FILTERS)
        if len(packed) > max_bytes:
            sys.exit(f"{name} packs to {len(packed) / 2**20:.1f} MiB, over --max-mib; raise --max-mib")
        if sum(len(item[1]) for item in parts[-1]) + len(packed) > max_bytes:
            parts.append([])
        parts[-1].append((name, packed, _sha256(raw)))
        print(f"{name}: {len(raw) / 2**20:.1f} MiB -> {len(packed) / 2**20:.1f} MiB", flush=True)
    folders = []
    for number, items in enumerate(parts, start=1):
        folder = out / f"part{number}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, packed, _ in items:
            temporary = folder / f".{name}.xz.tmp"
            temporary.write_bytes(packed)
            os.replace(temporary, folder / f"{name}.xz")
        manifest = {name: digest for name, _, digest in items}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        folders.append(folder)
        size = sum(path.stat().st_size for path in folder.iterdir())
        print(f"{folder}: {', '.join(manifest)} ({size / 2**20:.1f} MiB)", flush=True)
    return folders


def unpack(parts: Path, to: Path) -> Path:
    """Decompress every part under ``parts`` into ``to/cifar-10-batches-py``; exit if a file is missing or damaged."""
    target = to / "cifar-10-batches-py"
    target.mkdir(parents=True, exist_ok=True)
    expected: dict[str, tuple[Path, str]] = {}
    for manifest in sorted(parts.glob("part*/manifest.json")):
        for name, digest in json.loads(manifest.read_text()).items():
            expected[name] = (manifest.parent / f"{name}.xz", digest)
    missing = [name for name in FILES if name not in expected]
    if missing:
        sys.exit(f"parts under {parts} lack {', '.join(missing)}: carry every part folder 'pack' wrote")
    for name, (packed, digest) in expected.items():
        if (target / name).is_file() and _sha256((target / name).read_bytes()) == digest:
            continue
        raw = lzma.decompress(packed.read_bytes())
        if _sha256(raw) != digest:
            sys.exit(f"{packed} does not decompress to the file packed (SHA-256 differs); pack it again")
        temporary = target / f".{name}.tmp"
        temporary.write_bytes(raw)
        os.replace(temporary, target / name)
    print(f"CIFAR-10 ready under {to} (TASKSPACE_DATA={to})", flush=True)
    return to


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="compress CIFAR-10 (from TASKSPACE_DATA) into parts")
    packing.add_argument("--out", type=Path, required=True)
    packing.add_argument("--max-mib", type=float, default=50.0, help="largest part, MiB (default 50)")
    unpacking = commands.add_parser("unpack", help="decompress the parts into one CIFAR-10 folder")
    unpacking.add_argument("--parts", type=Path, required=True)
    unpacking.add_argument("--to", type=Path, required=True)
    arguments = parser.parse_args()
    if arguments.command == "pack":
        pack(arguments.out, int(arguments.max_mib * 2**20))
    else:
        unpack(arguments.parts, arguments.to)


if __name__ == "__main__":
    main()
