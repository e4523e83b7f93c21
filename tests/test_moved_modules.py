"""Modules that moved into the program's rooms (arena/learn, arena/play, arena/scale) still
import by their old names: the same module objects, with a DeprecationWarning that names
the new home."""

import importlib
import sys

import pytest

from arena import MOVED_MODULES


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_an_old_module_name_is_the_moved_module(old):
    new = importlib.import_module(MOVED_MODULES[old])
    sys.modules.pop(old, None)  # imported by an earlier test: import it afresh
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {MOVED_MODULES[old]}"):
        module = importlib.import_module(old)
    assert module is new and sys.modules[old] is new


def test_code_written_for_the_old_names_still_runs(monkeypatch):
    sys.modules.pop("arena.rollout", None)
    with pytest.warns(DeprecationWarning):
        from arena.rollout import Collector, policy_groups  # noqa: F401
    import arena.learn.rollout

    sentinel = object()
    monkeypatch.setattr("arena.rollout.sample_actions", sentinel)  # patches the moved module
    assert arena.learn.rollout.sample_actions is sentinel
    assert Collector is arena.learn.rollout.Collector


def test_a_name_that_never_existed_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("arena.no_such_module")
