"""Graphviz DOT export of the computational graph (zerograd/viz.py)."""

import os
import re
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

from zerograd import Tensor, ZerogradError
from zerograd.viz import render_graph, to_dot

NODE = re.compile(r"^\s*(\w+) \[label=\"((?:[^\"\\]|\\.)*)\"(.*)\];$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+);$")


def parse(dot):
    """{node id: (label, other attributes)} and [(from, to)] of DOT text written by to_dot."""
    nodes, edges = {}, []
    for line in dot.splitlines():
        if m := NODE.match(line):
            nodes[m[1]] = (m[2], m[3])
        elif m := EDGE.match(line):
            edges.append((m[1], m[2]))
    return nodes, edges


def small_graph():
    x = Tensor(np.ones((2, 3)), requires_grad=True, name="x")
    w = Tensor(np.ones((2, 3), np.float32), name="w")
    h = x * w
    y = h.sum()
    y.name = "loss"
    return x, w, h, y


def by_label(nodes, label):
    (node_id,) = [k for k, (lab, _) in nodes.items() if lab == label]
    return node_id


def test_to_dot_small_graph():
    *_, y = small_graph()
    dot = to_dot(y)
    assert dot.startswith("digraph zerograd {\n") and dot.endswith("}\n")
    nodes, edges = parse(dot)
    labels = sorted(label for label, _ in nodes.values())
    assert labels == sorted(
        ["x\\n(2, 3) float64", "w\\n(2, 3) float32", "(2, 3) float64", "loss\\n() float64", "Mul", "Sum"]
    )
    x, w, h, loss = (by_label(nodes, lab) for lab in
                     ["x\\n(2, 3) float64", "w\\n(2, 3) float32", "(2, 3) float64", "loss\\n() float64"])
    mul, sum_ = by_label(nodes, "Mul"), by_label(nodes, "Sum")
    assert sorted(edges) == sorted([(x, mul), (w, mul), (mul, h), (h, sum_), (sum_, loss)])
    assert "shape=box" in nodes[mul][1] and "shape=box" in nodes[sum_][1]
    assert "fillcolor=lightblue" in nodes[x][1]  # a leaf that requires a gradient
    assert "fillcolor" not in nodes[w][1] and "fillcolor" not in nodes[h][1]


def test_to_dot_is_deterministic_and_counts_every_node_once():
    x = Tensor(np.ones(2), requires_grad=True, name="x")
    a = x * x  # x used twice by one op: two edges
    y = (a + a.exp()).sum()
    dot = to_dot(y)
    assert dot == to_dot(y)
    nodes, edges = parse(dot)
    assert len(nodes) == 5 + 4  # tensors x, a, exp(a), a + exp(a), y; ops Mul, Exp, Add, Sum
    x_id, mul, add = by_label(nodes, "x\\n(2,) float64"), by_label(nodes, "Mul"), by_label(nodes, "Add")
    assert edges.count((x_id, mul)) == 2
    assert len(edges) == 3 + 2 + 3 + 2  # Mul (x, x -> a), Exp (a -> e), Add (a, e -> s), Sum (s -> y)
    assert sum(1 for _, to in edges if to == add) == 2
    assert len({frm for frm, to in edges if to == add}) == 2  # a and exp(a), each once


def test_to_dot_without_shapes():
    *_, y = small_graph()
    nodes, _ = parse(to_dot(y, show_shapes=False))
    assert sorted(label for label, _ in nodes.values()) == sorted(["x", "w", "", "loss", "Mul", "Sum"])


def test_to_dot_escapes_names():
    t = Tensor(np.ones(1), name='say "hi"\\ now')
    dot = to_dot(t, show_shapes=False)
    assert 'label="say \\"hi\\"\\\\ now"' in dot
    nodes, edges = parse(dot)
    assert len(nodes) == 1 and edges == []


def test_to_dot_deep_graph_without_recursion():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(5_000):
        y = y + 1.0  # each step adds the op, its output and the constant 1.0
    nodes, edges = parse(to_dot(y))
    assert len(nodes) == 1 + 5_000 * 3
    assert len(edges) == 5_000 * 3


def test_to_dot_after_backward_shows_the_freed_graph():
    *_, y = small_graph()
    y.backward()
    nodes, edges = parse(to_dot(y))
    assert sorted(label for label, _ in nodes.values()) == ["Sum", "loss\\n() float64"]
    assert len(edges) == 1


# --- render_graph ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["graph.dot", "graph.gv", "GRAPH.DOT"])
def test_render_graph_writes_dot_text(tmp_path, name):
    *_, y = small_graph()
    path = render_graph(y, tmp_path / name)
    assert path == tmp_path / name
    assert path.read_text(encoding="utf-8") == to_dot(y)


def test_render_graph_format_argument_wins(tmp_path):
    *_, y = small_graph()
    path = render_graph(y, str(tmp_path / "graph.txt"), format="dot")
    assert path.read_text(encoding="utf-8") == to_dot(y)


@pytest.mark.parametrize("name", ["graph.jpeg", "graph"])
def test_render_graph_unknown_format(tmp_path, name):
    *_, y = small_graph()
    with pytest.raises(ZerogradError, match=r"\.dot.*\.png"):
        render_graph(y, tmp_path / name)


def test_render_graph_without_graphviz_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    *_, y = small_graph()
    with pytest.raises(ZerogradError) as err:
        render_graph(y, tmp_path / "graph.png")
    message = str(err.value)
    assert "apt install graphviz" in message and "brew install graphviz" in message
    assert "to_dot" in message and "PNG" in message
    assert not (tmp_path / "graph.png").exists()


def _fake_dot(tmp_path, monkeypatch, body):
    """A `dot` program on PATH (a small Python script) standing in for Graphviz."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "dot"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.skipif(os.name != "posix", reason="the fake dot is a shebang script")
def test_render_graph_runs_dot_with_the_text_on_stdin(tmp_path, monkeypatch):
    _fake_dot(tmp_path, monkeypatch, (
        "import sys\n"
        "args = sys.argv[1:]\n"
        "out = args[args.index('-o') + 1]\n"
        "open(out, 'w').write(' '.join(a for a in args if a.startswith('-T')) + '\\n' + sys.stdin.read())\n"
    ))
    *_, y = small_graph()
    path = render_graph(y, tmp_path / "graph.svg")
    assert path.read_text() == "-Tsvg\n" + to_dot(y)
    render_graph(y, tmp_path / "graph.out", format="PNG")
    assert (tmp_path / "graph.out").read_text().startswith("-Tpng\n")


@pytest.mark.skipif(os.name != "posix", reason="the fake dot is a shebang script")
def test_render_graph_reports_dot_failure(tmp_path, monkeypatch):
    _fake_dot(tmp_path, monkeypatch, "import sys\nsys.stderr.write('syntax error in line 1')\nsys.exit(3)\n")
    *_, y = small_graph()
    with pytest.raises(ZerogradError, match="exit 3.*syntax error in line 1"):
        render_graph(y, tmp_path / "graph.png")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<svg")])
def test_render_graph_with_real_graphviz(tmp_path, suffix, magic):
    *_, y = small_graph()
    data = render_graph(y, tmp_path / f"graph{suffix}").read_bytes()
    assert magic in data[:2000]


def test_viz_does_not_import_matplotlib():
    code = "import sys, zerograd.viz; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
