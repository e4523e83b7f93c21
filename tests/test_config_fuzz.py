"""Fuzzing the config loader and `arena train --check` over keys and values.

Whatever a user types after `arena train`, the outcome must be a valid Config or one
ConfigError line naming the problem, never a traceback from OmegaConf, YAML or Lightning
halfway into a run; and a valid Config must be safe to start (finite numbers, a run
directory inside run.root)."""

from __future__ import annotations

import math
import os
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.cli import main
from arena.config import Config, ConfigError, load_config, to_dict


def _schema_keys(cls: type, prefix: str = "") -> Iterator[str]:
    """Every dotted leaf key of the schema, plus the dict-valued fields themselves."""
    for f in fields(cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if is_dataclass(default):
            yield from _schema_keys(type(default), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


SCHEMA_KEYS = sorted(_schema_keys(Config))
SECTIONS = sorted(f.name for f in fields(Config))
DICT_FIELDS = ["game.options", "reward.weights"]
# Real entries of those dicts (MOBA options, reward events) next to made-up ones.
DICT_ENTRIES = ["team_size", "max_ticks", "seed", "xp", "gold", "kills", "num_cues", "x"]


def _misspell(key: str, data: st.DataObject) -> str:
    i = data.draw(st.integers(0, len(key) - 1))
    edit = data.draw(st.sampled_from(["drop", "double", "swapcase", "dot"]))
    if edit == "drop":
        return key[:i] + key[i + 1:]
    if edit == "double":
        return key[:i] + key[i] + key[i:]
    if edit == "swapcase":
        return key[:i] + key[i].swapcase() + key[i + 1:]
    return key[:i] + "." + key[i:]


@st.composite
def keys(draw: st.DrawFn, *, allow_root: bool = True) -> str:
    """A schema key, a key inside game.options/reward.weights, a section, or a misspelt
    or made-up key."""
    schema = [k for k in SCHEMA_KEYS if allow_root or k != "run.root"]
    kind = draw(st.sampled_from(["schema"] * 5 + ["dict"] * 2 + ["section", "typo", "unknown"]))
    if kind == "schema":
        return draw(st.sampled_from(schema))
    if kind == "dict":
        entry = draw(st.sampled_from(DICT_ENTRIES) | st.from_regex(r"[a-z_]{1,8}", fullmatch=True))
        deeper = draw(st.sampled_from(["", ".a", ".a.b"]))
        return f"{draw(st.sampled_from(DICT_FIELDS))}.{entry}{deeper}"
    if kind == "section":
        return draw(st.sampled_from(SECTIONS))
    if kind == "typo":
        return _misspell(draw(st.sampled_from(schema)), draw(st.data()))
    return draw(st.from_regex(r"[a-z_.]{1,12}", fullmatch=True))


# Ints of any size for the loader. Through `arena train --check`, which builds the
# networks, only sizes that build at once or fail at once: a hidden size of 20000 would
# spend minutes in orthogonal init; 10**12 fails in the allocator.
ANY_INTS = st.integers(-(10**30), 10**30)
QUICK_INTS = st.sampled_from([-(10**30), -(10**12), 10**12, 10**30])


def values(big_ints: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    """Override values as typed on the command line."""
    scalars = st.one_of(
        st.integers(-5, 5).map(str),
        big_ints.map(str),
        st.just("1" * 400),  # an int too large for float()
        st.floats(allow_nan=True, allow_infinity=True).map(repr),  # nan, inf, -inf, 1e+300
        st.sampled_from([".nan", ".inf", "-.inf", "1e999", "-1e999", "1e-320", "0.0", "-0.0"]),
        st.sampled_from(["true", "false", "null", "", "''", '""', " "]),
        st.sampled_from(["../x", "../../x", "..", ".", "/", "~", "~/x", "a/b", "a\\b",
                         "/etc/passwd", "x\x00y", "'a\tb'", "${oc.env:HOME}", "${ppo.lr}",
                         "${run.name}", "[", "{"]),
        st.sampled_from(["00:01:00:00", "1:00:00", "00:24:00:00", "00:00:00:00", "bf16-mixed",
                         "16", "64-true", "fp8", "gpu", "cuda", "auto", "GPU", "moba", "memory",
                         "pusher", "quality", "pfsp", "radiant", "horizon", "entity"]),
        st.text(max_size=12),
    )
    return st.one_of(
        scalars,
        st.lists(scalars.filter(lambda v: "," not in v and "]" not in v), max_size=3).map(
            lambda xs: "[" + ", ".join(xs) + "]"),
        st.sampled_from(["{a: 1}", "{}", "[]", "[1, .nan]", "{team_size: .inf}"]),
    )


@st.composite
def overrides(draw: st.DrawFn, *, allow_root: bool = True,
              big_ints: st.SearchStrategy[int] = ANY_INTS) -> list[str]:
    return draw(st.lists(st.builds(lambda k, v: f"{k}={v}", keys(allow_root=allow_root),
                                   values(big_ints)), max_size=4))


def _non_finite(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return isinstance(value, float) and not math.isfinite(value)


def _assert_one_line(text: str) -> None:
    assert text.strip() and len(text.splitlines()) == 1, repr(text)


@settings(max_examples=150, deadline=None)
@given(items=overrides(),
       malformed=st.lists(st.sampled_from(["ppo.lr", "=", "=1", "ppo..lr=1", ".x=1", "a b"]),
                          max_size=1))
def test_config_loader_fuzz_gives_a_config_or_one_line_config_error(items: list[str],
                                                                    malformed: list[str]) -> None:
    try:
        config = load_config(None, [*items, *malformed])
    except ConfigError as exc:
        _assert_one_line(str(exc))
        return
    assert isinstance(config, Config) and not malformed
    assert not _non_finite(to_dict(config)), to_dict(config)
    if config.run.name is not None:  # the run directory is a child of run.root, never elsewhere
        root = Path(config.run.root).absolute()
        assert Path(os.path.normpath(root / config.run.name)).parent == Path(os.path.normpath(root))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=overrides(allow_root=False, big_ints=QUICK_INTS))
def test_train_check_fuzz_exits_0_or_2_with_one_error_line_and_writes_nothing(
        items: list[str], tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # a relative path written by mistake would land here too
    root = tmp_path / "runs"
    capsys.readouterr()
    code = main(["train", "--check", *items, f"run.root={root}"])
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err)
    if code == 2:
        assert len(err.splitlines()) == 1 and err.startswith("arena train: error:"), err
    assert list(tmp_path.iterdir()) == [], list(tmp_path.rglob("*"))
