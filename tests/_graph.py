"""What a graph is made of, for the tests of fused nodes."""

from __future__ import annotations

from zerograd import Tensor
from zerograd.tensor import graph_nodes
from zerograd.viz import _function_label


def node_kinds(out: Tensor) -> list[str]:
    """The sorted labels of the operations behind `out`, as the graph drawing names them ("Conv2d + ReLU", ...)."""
    return sorted(_function_label(fn) for _, fn, _ in graph_nodes(out) if fn is not None)
