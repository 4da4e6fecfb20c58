"""Random numbers as PyTorch arranges them: a default Generator that `manual_seed` resets.

Everything in zerograd that draws random numbers without being handed a generator (layer
initialisation, Dropout, `rand`/`randn`/`randint`, a shuffling DataLoader without a seed, random_split)
draws from `default_generator`, so `zerograd.manual_seed(0)` at the top of a program makes it repeat
exactly. A `Generator` is a NumPy Generator (PCG64) with PyTorch's seeding methods, so it goes wherever
zerograd takes `generator=` and wherever NumPy code takes a Generator. Depends on NumPy only, so the data
package can use it too.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Generator(np.random.Generator):
    """A NumPy Generator with torch.Generator's methods: Generator().manual_seed(0) repeats np.random.default_rng(0)."""

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(np.random.PCG64())
        self._initial_seed: int | None = None

    def manual_seed(self, seed: int) -> Generator:
        """Restarts this generator's stream from `seed` (any non-negative int); returns self."""
        seed = int(seed)
        self.bit_generator.state = np.random.PCG64(seed).state
        self._initial_seed = seed
        return self

    def seed(self) -> int:
        """Reseeds from fresh OS entropy; returns the new seed."""
        seed = int(np.random.SeedSequence().entropy % 2**63)
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int | None:
        """The seed of the last manual_seed() or seed() (None if seeded from entropy at creation)."""
        return self._initial_seed

    def get_state(self) -> dict[str, Any]:
        """The generator's state (NumPy's bit-generator state dict), for set_state."""
        return self.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> Generator:
        """Restores a state from get_state(); returns self."""
        self.bit_generator.state = state
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.get_state(), self._initial_seed))


def _rebuild(state: dict[str, Any], initial_seed: int | None) -> Generator:
    g = Generator().set_state(state)
    g._initial_seed = initial_seed
    return g


default_generator = Generator()  # seeded from OS entropy until manual_seed is called


def manual_seed(seed: int) -> Generator:
    """Seeds the default generator (layer init, Dropout, rand/randn/randint, unseeded DataLoader); returns it."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Reseeds the default generator from OS entropy; returns the seed."""
    return default_generator.seed()


def initial_seed() -> int | None:
    """The seed last given to manual_seed() or seed() (None before either)."""
    return default_generator.initial_seed()


def get_rng_state() -> dict[str, Any]:
    """State of the default generator, for set_rng_state."""
    return default_generator.get_state()


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores the default generator's state from get_rng_state()."""
    default_generator.set_state(state)


def rng(generator: np.random.Generator | int | None = None) -> np.random.Generator:
    """The Generator to draw from: the default one for None, a new one for an int seed, else `generator`."""
    if generator is None:
        return default_generator
    return np.random.default_rng(generator)
