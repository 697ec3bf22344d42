"""Modular workflows: split, port, stack, substitute and drop the modules of trained nets.

``operators`` builds composed nets from the modules of others (checking that modules fit);
``run`` trains what a composition left fresh, measures it and saves it as an ordinary checkpoint.
"""

from taskspace.compose.operators import AdapterNote, drop, module_bounds, split, stack, substitute
from taskspace.compose.run import OPERATORS, ComposeRequest, compose

__all__ = ["AdapterNote", "drop", "module_bounds", "split", "stack", "substitute", "OPERATORS", "ComposeRequest",
           "compose"]
