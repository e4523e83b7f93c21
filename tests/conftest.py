"""Shared test helpers."""

from __future__ import annotations

from contextlib import contextmanager

from games import registry


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
