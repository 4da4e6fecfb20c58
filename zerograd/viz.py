"""Seeing what zerograd computes.

Figures (learning curves, confusion matrices, the chapter-6 experiments) are in zerograd.plots.

The computational graph as Graphviz DOT text: `to_dot(t)` returns the text, `render_graph(t, path)`
writes it as .dot, or as .png/.svg/.pdf when the Graphviz `dot` program is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .errors import ZerogradError
from .tensor import Function, Tensor, graph_nodes

# =============================================================================================
# Graphviz DOT export of the computational graph
# =============================================================================================

_DOT_TEXT_FORMATS = ("dot", "gv")
_DOT_RENDER_FORMATS = ("png", "svg", "pdf")


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string; newlines become DOT's centred line breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _tensor_label(t: Tensor, show_shapes: bool) -> str:
    lines = [t.name] if t.name else []
    if show_shapes:
        lines.append(f"{tuple(t.shape)} {t.dtype}")
    return "\n".join(lines)


def _function_label(fn: Function) -> str:
    params = getattr(fn, "params", {})  # a Linear or a Conv2d and the ReLU (and max-pooling) after it, as one node
    fused = (" + ReLU" if params.get("relu") else "") + (" + MaxPool2d" if params.get("pool") else "")
    return type(fn).__name__ + fused


def to_dot(tensor: Tensor, show_shapes: bool = True) -> str:
    """Graph of `tensor` as Graphviz DOT text: tensors (ellipses) -> operations (boxes) -> results.

    A tensor is labelled with its name, if set, and, with `show_shapes`, its shape and dtype;
    an operation with its Function class name. A tensor used twice by one operation (x * x)
    has two edges into it. Leaves that require a gradient are filled light blue. Call it before
    `backward()` (or use `retain_graph=True`): backward frees the graph, leaving the operations
    that made `tensor` without their inputs.
    """
    tensor_ids: dict[int, str] = {}
    function_ids: dict[int, str] = {}
    nodes: list[str] = []
    edges: list[str] = []

    def tensor_id(t: Tensor) -> str:
        if id(t) not in tensor_ids:
            tensor_ids[id(t)] = f"t{len(tensor_ids)}"
        return tensor_ids[id(t)]

    for t, fn, inputs in graph_nodes(tensor):  # iterative: deep graphs need no recursion
        attrs = f"label={_dot_quote(_tensor_label(t, show_shapes))}"
        if t.is_leaf and t.requires_grad:
            attrs += ", style=filled, fillcolor=lightblue"
        nodes.append(f"  {tensor_id(t)} [{attrs}];")
        if fn is None:
            continue
        fid = function_ids[id(fn)] = f"f{len(function_ids)}"
        nodes.append(f"  {fid} [label={_dot_quote(_function_label(fn))}, shape=box];")
        edges.append(f"  {fid} -> {tensor_id(t)};")
        for inp in inputs:
            edges.append(f"  {tensor_id(inp)} -> {fid};")
    lines = ["digraph zerograd {", "  node [shape=ellipse];", *nodes, *edges, "}"]
    return "\n".join(lines) + "\n"


def render_graph(tensor: Tensor, path: str | Path, format: str | None = None) -> Path:
    """Writes the graph of `tensor` to `path`: DOT text for .dot/.gv, or PNG/SVG/PDF via Graphviz.

    The format comes from `format` or else the file extension. Rendering runs the `dot` program;
    without it, a ZerogradError says how to install Graphviz. Returns the path written.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in _DOT_TEXT_FORMATS + _DOT_RENDER_FORMATS:
        raise ZerogradError(
            f"render_graph: cannot tell how to write {str(path)!r} (format {fmt or 'missing'!r}): "
            f"use a .dot/.gv file for DOT text or .png/.svg/.pdf to render with Graphviz, or pass format="
        )
    text = to_dot(tensor)
    if fmt in _DOT_TEXT_FORMATS:
        path.write_text(text, encoding="utf-8")
        return path
    dot = shutil.which("dot")
    if dot is None:
        raise ZerogradError(
            f"render_graph: writing {fmt.upper()} needs the Graphviz 'dot' program, which is not on PATH: "
            "install Graphviz (apt install graphviz / brew install graphviz), or save DOT text instead "
            "with render_graph(t, 'graph.dot') or to_dot(t)"
        )
    done = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(path)], input=text.encode("utf-8"), capture_output=True, check=False
    )
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise ZerogradError(f"render_graph: Graphviz 'dot' failed (exit {done.returncode}) writing {path}: {message}")
    return path
