"""zerograd/tensor.pyi against the runtime: every name both ways, with the same kind and argument names."""

import ast
import inspect
import sys
from pathlib import Path

import pytest

import zerograd  # noqa: F401  (binds the functional API onto Tensor)
from zerograd import Function, Tensor

MODULE = sys.modules["zerograd.tensor"]  # `zerograd.tensor` the attribute is the function tensor()
STUB = Path(MODULE.__file__).with_suffix(".pyi")

# what functional binds onto Tensor among the dunders: the stub must declare these whatever else changes
BOUND_DUNDERS = {
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__", "__matmul__",
    "__rmatmul__", "__pow__", "__rpow__", "__neg__", "__abs__", "__getitem__", "__setitem__", "__eq__", "__ne__",
    "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__and__", "__or__", "__xor__", "__invert__", "__iadd__",
    "__isub__", "__imul__", "__itruediv__", "__int__", "__float__", "__index__", "__format__", "__array__",
}
# the class machinery every class has, not API
NOT_API = {"__module__", "__doc__", "__slots__", "__weakref__", "__dict__", "__firstlineno__", "__static_attributes__"}


def _stub() -> ast.Module:
    return ast.parse(STUB.read_text(encoding="utf-8"))


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


# Types the stub spells out for its annotations (functional.math's ValuesIndices): no runtime name of tensor.py
_ANNOTATION_ONLY = {"_ValuesIndices"}


def _declared(body: list[ast.stmt]) -> dict[str, list[ast.stmt]]:
    """Name -> its declarations (several for @overload) among a stub body's defs, classes and annotated names."""
    out: dict[str, list[ast.stmt]] = {}
    for node in body:
        if isinstance(node, ast.ClassDef) and node.name in _ANNOTATION_ONLY:
            continue
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.setdefault(node.target.id, []).append(node)
    return out


def _stub_kind(node: ast.stmt) -> str:
    if isinstance(node, ast.AnnAssign):
        return "attribute"
    if isinstance(node, ast.ClassDef):
        return "class"
    decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
    return "property" if "property" in decorators else "method"


def _runtime_kind(owner: object, name: str) -> str:
    value = inspect.getattr_static(owner, name)
    if isinstance(value, property):
        return "property"
    if isinstance(value, type):
        return "class"
    if callable(value) or isinstance(value, (classmethod, staticmethod)):
        return "method"
    return "attribute"  # slots, class constants


def _stub_params(node: ast.FunctionDef, method: bool) -> list[tuple[str, str]]:
    args = node.args
    positional = [(a.arg, "positional") for a in args.posonlyargs + args.args]
    out = positional[1:] if method else positional  # self / cls
    if args.vararg:
        out.append((args.vararg.arg, "*"))
    out += [(a.arg, "keyword") for a in args.kwonlyargs]
    if args.kwarg:
        out.append((args.kwarg.arg, "**"))
    return out


_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional", inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
    inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.KEYWORD_ONLY: "keyword",
    inspect.Parameter.VAR_KEYWORD: "**",
}


def _runtime_params(owner: object, name: str, method: bool) -> list[tuple[str, str]]:
    value = inspect.getattr_static(owner, name)
    function = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
    params = [(p.name, _KINDS[p.kind]) for p in inspect.signature(function).parameters.values()]
    return params[1:] if method else params  # the bound tensor, whatever the function calls it (a, x, input, self)


def _differences(owner: object, runtime_names: set[str], stub_body: list[ast.stmt], method: bool) -> list[str]:
    """What differs between the runtime names of `owner` and a stub body: missing either way, kind, arguments."""
    declared = _declared(stub_body)
    problems = [f"{n}: at runtime, not in the stub" for n in sorted(runtime_names - set(declared))]
    for name, nodes in sorted(declared.items()):
        if not hasattr(owner, name):
            problems.append(f"{name}: in the stub, not at runtime")
            continue
        kinds = {_stub_kind(n) for n in nodes}
        if kinds != {_runtime_kind(owner, name)}:
            problems.append(f"{name}: the stub has a {'/'.join(sorted(kinds))}, runtime a {_runtime_kind(owner, name)}")
        elif kinds == {"method"}:
            runtime = _runtime_params(owner, name, method)
            for node in nodes:  # an @overload may leave out arguments, never rename or add one
                stub = _stub_params(node, method)
                if (stub != runtime) if len(nodes) == 1 else not set(stub) <= set(runtime):
                    problems.append(f"{name}: stub arguments {stub}, runtime {runtime}")
    return problems


def _tensor_runtime_names() -> set[str]:
    public = {n for n in dir(Tensor) if not n.startswith("_")}
    return public | (set(vars(Tensor)) - NOT_API)  # own and bound dunders, and _wrap/_ctx/_version other modules use


def _module_runtime_names() -> set[str]:
    """tensor.py's own public names: not its imports (np, Any, ShapeError, ...)."""
    return {
        n for n, v in vars(MODULE).items()
        if not n.startswith("_") and not inspect.ismodule(v)
        and getattr(v, "__module__", MODULE.__name__) == MODULE.__name__
    }


def test_stub_declares_every_tensor_attribute_and_nothing_else():
    assert BOUND_DUNDERS <= set(vars(Tensor)), "functional no longer binds some of these: update BOUND_DUNDERS"
    assert _differences(Tensor, _tensor_runtime_names(), _class(_stub(), "Tensor").body, method=True) == []


def test_stub_declares_function():
    body = [n for n in _class(_stub(), "Function").body if "params" not in _declared([n])]
    names = {n for n in dir(Function) if not n.startswith("_")}
    assert _differences(Function, names, body, method=True) == []
    recorded = (Tensor([1.0], requires_grad=True) * 2)._ctx
    assert isinstance(recorded.params, dict)  # declared too, but set on each Function that apply() records


def test_stub_declares_the_module_names():
    assert _module_runtime_names() >= {"Tensor", "Function", "tensor", "no_grad", "enable_grad", "graph_nodes"}
    assert _differences(MODULE, _module_runtime_names(), _stub().body, method=False) == []


# --- the check itself can fail -----------------------------------------------------------------------------------
def test_a_method_bound_without_a_stub_entry_is_reported(monkeypatch):
    monkeypatch.setattr(Tensor, "frobnicate", lambda self: self, raising=False)
    problems = _differences(Tensor, _tensor_runtime_names(), _class(_stub(), "Tensor").body, method=True)
    assert problems == ["frobnicate: at runtime, not in the stub"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    def __radd__(self, other: Any) -> Tensor: ...\n", "", "__radd__: at runtime, not in the stub"),
        ("def zero_(self) -> Tensor: ...\n", "def zero_(self) -> Tensor: ...\n    def frob(self) -> Tensor: ...\n",
         "frob: in the stub, not at runtime"),
        ("def unsqueeze(self, dim: _int)", "def unsqueeze(self, axis: _int)", "unsqueeze: stub arguments"),
        ("def add_(self, other: Any, *, alpha", "def add_(self, other: Any, alpha", "add_: stub arguments"),
        ("    @property\n    def device(self)", "    def device(self)",
         "device: the stub has a method, runtime a property"),
        ("    def size(self, dim: _int) -> _int", "    def size(self, axis: _int) -> _int", "size: stub arguments"),
    ],
)
def test_a_stub_that_drifts_is_reported(old, new, expected):
    text = STUB.read_text(encoding="utf-8")
    assert old in text
    body = _class(ast.parse(text.replace(old, new, 1)), "Tensor").body
    problems = _differences(Tensor, _tensor_runtime_names(), body, method=True)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_a_public_module_function_missing_from_the_stub_is_reported(monkeypatch):
    def graph_depth(root: Tensor) -> int:
        return 0

    graph_depth.__module__ = MODULE.__name__
    monkeypatch.setattr(MODULE, "graph_depth", graph_depth, raising=False)
    assert _differences(MODULE, _module_runtime_names(), _stub().body, method=False) == [
        "graph_depth: at runtime, not in the stub"
    ]


def test_the_stub_ships_with_the_package():
    """setuptools puts *.pyi and py.typed into wheels only through package-data."""
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    line = next(x for x in section.splitlines() if x.startswith('"zerograd" ='))
    assert '"*.pyi"' in line and '"py.typed"' in line
    assert (STUB.parent / "py.typed").is_file()
