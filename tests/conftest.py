"""Shared test helpers."""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager

import pytest

from games import registry

needs_magent2 = pytest.mark.skipif(importlib.util.find_spec("magent2") is None,
                                   reason="magent2 is optional: pip install -e '.[thirdparty]'")
needs_mpe2 = pytest.mark.skipif(importlib.util.find_spec("mpe2") is None,
                                reason="mpe2 is optional: pip install -e '.[thirdparty]'")


@contextmanager
def temporary_game(name: str, factory, description: str = "a test game"):
    """`name` registered for the duration, the registry restored afterwards."""
    saved = dict(registry._REGISTRY), dict(registry._FACTORIES)
    registry.register(name, factory, description, overwrite=True)
    try:
        yield name
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved[0])
        registry._FACTORIES.clear()
        registry._FACTORIES.update(saved[1])
