"""``python -m taskspace``."""

from taskspace.cli import console_entry

console_entry()
