"""ModuleList and ModuleDict, as torch.nn: containers whose Modules are registered (their parameters found)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import ZerogradError
from .module import Module


class ModuleList(Module):
    """A list of Modules: index, iterate, append, extend, insert; it has no forward of its own."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _renumber(self, modules: list[Module]) -> None:
        for name in list(self._modules):
            self.__delattr__(name)
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def _index(self, index: int) -> int:
        n = len(self._modules)
        if not -n <= index < n:
            raise IndexError(f"ModuleList index {index} out of range for {n} modules")
        return index % n

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(items[index])
        return items[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(str(self._index(index)), module)

    def __delitem__(self, index: int | slice) -> None:
        items = list(self._modules.values())
        del items[index if isinstance(index, slice) else self._index(index)]
        self._renumber(items)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def append(self, module: Module) -> ModuleList:
        """Adds module at the end; returns self."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Adds each module at the end; returns self."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Puts module before position index."""
        items = list(self._modules.values())
        items.insert(index, module)
        self._renumber(items)

    def add_module(self, name: str, module: Module | None) -> None:
        if not isinstance(module, Module):
            raise ZerogradError(f"ModuleList holds Modules, got {type(module).__name__}")
        super().add_module(name, module)


class ModuleDict(Module):
    """A dict of Modules by name, in insertion order; it has no forward of its own."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise ZerogradError(f"ModuleDict holds Modules, got {type(module).__name__} for '{key}'")
        if key not in self._modules and hasattr(self, key):  # a key such as "train" would hide the method
            raise ZerogradError(f"ModuleDict key '{key}' is the name of a Module attribute: choose another key")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        self.__delattr__(key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self) -> list[str]:
        """The names, in insertion order."""
        return list(self._modules)

    def values(self) -> list[Module]:
        """The Modules, in insertion order."""
        return list(self._modules.values())

    def items(self) -> list[tuple[str, Module]]:
        """(name, Module) pairs, in insertion order."""
        return list(self._modules.items())

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Adds or replaces modules from a dict or (name, Module) pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, m in pairs:
            self[key] = m

    def pop(self, key: str) -> Module:
        """Removes and returns the module `key`."""
        m = self._modules[key]
        del self[key]
        return m
