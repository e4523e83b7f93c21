"""Players of any game: trained policies and scripted bots behind one interface, for
tournaments, `arena watch`, benchmarks and tests.

A player spec (command line, tournaments, `load_player`) is one of:

    random | connect4 | pusher | ...            a scripted bot of the game (`random`: every
                                               game; the others: what the game registers)
    pusher~0.2 | pusher+lasthitter+teamfighter  a composite of them: noisy (a random legal
                                               action with probability 0.2), or one bot per
                                               agent of a team (games/registry.py parse_bot)
    path/to/update-000100.ckpt                 a training checkpoint (weights only)
    runs/NAME                                  a run directory: its newest checkpoint
    runs/NAME@ID                               league snapshot ID of a run (every role's
                                               pool in runs/NAME/league/<role>, networks of
                                               the run's config.yaml)
    runs/NAME/league/ROLE/snapshot-000003.safetensors   one role's snapshot, by its file

A plain word (no '/', '.' or '@') is a bot name: write ./random for a file of that name. A
path that exists is taken as a path even if it contains '@'; words joined by '+' and '~'
that name no file are a bot spec. Every problem with a spec — a
missing file, a corrupt or foreign checkpoint, a snapshot that does not fit, a bot the game
does not have — raises `CheckpointError` with a message that starts with the spec.

The game of a match (`MatchGame`) is the first trained player's (its saved config's game
name and options), or the one named for bots alone; `match_game` also insists that every
trained player comes from that game. Loading a policy builds only its networks from the
saved config (arena.learn.networks.build_policy, one per policy group of the game), never a
learner. A player becomes a side of a match with `side(vec, seed)`: a `PolicyRunner` or a
`BotSide` (arena/play/runner.py), so every match plays through the one runner.
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from arena.checkpoints import CheckpointError
from games.registry import BOT_NAME, RANDOM_BOT, looks_like_bot, parse_bot

DEFAULT_GAME = "moba"
SPEC_HELP = ("a bot of the game (random, or one it registers, or a composite: NAME~EPS, "
             "A+B+C), a checkpoint file, a run "
             "directory, RUN_DIR@ID (a league snapshot) or a snapshot file")


# ---- the game of a match -------------------------------------------------------------------
@dataclass(frozen=True)
class MatchGame:
    """A game by name and options, as a config names it."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def vec(self, num_games: int, **extra: Any):
        from games.vector import make_vec

        return make_vec(self.name, num_games, **{**dict(self.options), **extra})

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}


# ---- players -------------------------------------------------------------------------------
class Player(abc.ABC):
    """Plays the teams it is seated at in a batch of games of one `MatchGame`."""

    name: str = "player"
    kind: str = "player"  # "bot" or "policy"
    update: int | None = None  # training update of a checkpoint or snapshot
    run_dir: Path | None = None  # the run it comes from
    spec: str | None = None  # how it was loaded

    @abc.abstractmethod
    def side(self, vec: Any, seed: int) -> Any:
        """This player as a side of a match on `vec` (seeded sampling)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class BotPlayer(Player):
    """A scripted bot of the game (games/registry.py): one bot object per role."""

    kind = "bot"

    def __init__(self, name: str, game: str) -> None:
        try:
            parse_bot(game, name)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        self.name = self.spec = name
        self.game = game

    def side(self, vec: Any, seed: int) -> Any:
        from arena.play.runner import BotSide
        from games.registry import make_side_bots

        try:
            return BotSide(vec, make_side_bots(self.game, self.name, vec, seed=seed))
        except ValueError as exc:  # a mixture that does not fit the teams
            raise CheckpointError(str(exc)) from None


class PolicyPlayer(Player):
    """Trained networks by policy-group key (one per role, or per agent with per-agent
    weights), played through a `PolicyRunner`: its own LSTM state per row, reset at the
    row's episode start, sampling from its own seeded generator (`deterministic`: the most
    likely action)."""

    kind = "policy"

    def __init__(self, name: str, policies: Mapping[str, Any], per_agent_weights: bool, *,
                 update: int | None = None, deterministic: bool = False,
                 spec: str | None = None, run_dir: Path | None = None) -> None:
        self.name = name
        self.policies = dict(policies)
        self.per_agent_weights = bool(per_agent_weights)
        self.update = update
        self.deterministic = bool(deterministic)
        self.spec = spec
        self.run_dir = run_dir

    def groups(self, vec: Any) -> list[Any]:
        """The policy groups of `vec`, each with a network of this player that fits it;
        CheckpointError naming what does not fit."""
        from arena.learn.networks import policy_groups

        groups = policy_groups(vec, self.per_agent_weights)
        where = self.spec or self.name
        missing = [g.key for g in groups if g.key not in self.policies]
        if missing:
            raise CheckpointError(f"{where}: has no network for {missing} of this game (it "
                                  f"has {sorted(self.policies)}; another game, team size or "
                                  f"setting?)")
        for g in groups:
            policy = self.policies[g.key]
            if (policy.obs_dim, policy.num_actions) != (g.role.obs_dim, g.role.num_actions):
                raise CheckpointError(
                    f"{where}: network {g.key!r} was trained for observations/actions of size "
                    f"{policy.obs_dim}/{policy.num_actions}, this game has "
                    f"{g.role.obs_dim}/{g.role.num_actions} (another team size or setting?)")
        return groups

    def side(self, vec: Any, seed: int) -> Any:
        from arena.play.runner import PolicyRunner

        groups = self.groups(vec)
        device = next(iter(self.policies.values())).actor.weight.device
        return PolicyRunner(vec, groups, self.policies.__getitem__, seed=seed, device=device,
                            deterministic=self.deterministic)


# ---- specs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """What a spec names. kind: bot | checkpoint | run | snapshot."""

    text: str
    kind: str
    path: Path | None = None  # checkpoint file, run directory, or snapshot file
    run_dir: Path | None = None
    snapshot: int | None = None  # RUN_DIR@ID

    @property
    def default_name(self) -> str:
        if self.kind == "bot":
            return self.text
        run = _dir_name(self.run_dir) if self.run_dir is not None else None
        if self.kind == "snapshot":
            number = self.snapshot if self.snapshot is not None else _snapshot_number(self.path)
            return f"{run}@{number}" if run else self.path.stem
        if self.kind == "run":
            return run
        stem = self.path.stem
        return f"{run}/{stem}" if run else stem


def _dir_name(path: Path) -> str:
    return path.name or path.resolve().name


def _snapshot_number(path: Path) -> str:
    match = re.search(r"(\d+)$", path.stem)
    return str(int(match.group(1))) if match else path.stem


def parse_spec(spec: str) -> Spec:
    """Classify a spec (see the module docstring); CheckpointError if it names nothing."""
    if not isinstance(spec, str) or not spec:
        raise CheckpointError(f"{spec!r}: empty player spec; expected {SPEC_HELP}")
    if BOT_NAME.fullmatch(spec):
        return Spec(spec, "bot")
    path = Path(spec).expanduser()
    if looks_like_bot(spec) and not path.exists():
        return Spec(spec, "bot")  # a composite bot spec (pusher~0.2, a+b+c)
    if path.is_dir():
        return Spec(spec, "run", path, path)
    if path.is_file():
        if path.suffix == ".safetensors":
            return Spec(spec, "snapshot", path, path.resolve().parent.parent.parent)
        run = path.parent.parent if path.parent.name == "checkpoints" else None
        return Spec(spec, "checkpoint", path, run)
    head, sep, tail = spec.rpartition("@")
    if sep and head:
        run = Path(head).expanduser()
        if not tail.isdigit():
            raise CheckpointError(f"{spec}: expected RUN_DIR@ID with a snapshot number after "
                                  f"'@', got {tail!r}")
        if not run.is_dir():
            raise CheckpointError(f"{spec}: no such run directory {head}")
        return Spec(spec, "snapshot", None, run, int(tail))
    raise CheckpointError(f"{spec}: no such checkpoint file or run directory")


def pool_dirs(run_dir: Path) -> dict[str, Path]:
    """A run's league pools by role: runs/NAME/league/<role>/pool.json."""
    league = Path(run_dir) / "league"
    if not league.is_dir():
        return {}
    return {d.name: d for d in sorted(league.iterdir()) if (d / "pool.json").is_file()}


def snapshot_ids(run_dir: Path) -> list[tuple[int, int]]:
    """(id, update) of a run's league snapshots (its first role's pool; every role is
    frozen at once)."""
    from league.pool import OpponentPool

    pools = pool_dirs(run_dir)
    if not pools:
        return []
    return [(s.id, s.update) for s in OpponentPool.open(next(iter(pools.values()))).snapshots]


def checkpoint_update(path: Path) -> int:
    """The training update of a checkpoint: from its name (update-NNNNNN.ckpt), else read."""
    from arena.checkpoints import read_checkpoint

    match = re.fullmatch(r"update-(\d+)", path.stem)
    if match:
        return int(match.group(1))
    return int(read_checkpoint(path)["arena"]["updates"])


def describe(spec: str | Spec) -> tuple[str, int | None, Path | None]:
    """(default name, training update, run directory) of a spec, without building a model."""
    from arena.checkpoints import find_checkpoint
    from league.pool import OpponentPool, PoolError

    s = spec if isinstance(spec, Spec) else parse_spec(spec)
    if s.kind == "bot":
        return s.text, None, None
    try:
        if s.kind in ("checkpoint", "run"):
            return s.default_name, checkpoint_update(find_checkpoint(s.path)), s.run_dir
        if s.snapshot is not None:
            pools = pool_dirs(s.run_dir)
            if not pools:
                raise CheckpointError(f"{s.text}: the run has no league snapshots "
                                      f"(no {s.run_dir / 'league'}/<role>/pool.json)")
            pool = OpponentPool.open(next(iter(pools.values())))
            return s.default_name, pool.get(s.snapshot).update, s.run_dir
        _, update = _read_snapshot_file(s.text, s.path, tensors=False)
        return s.default_name, update, s.run_dir
    except (PoolError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise CheckpointError(_with_spec(s.text, str(exc))) from None
        raise CheckpointError(f"{s.text}: {exc}") from None


def _with_spec(spec: str, message: str) -> str:
    return message if message.startswith(spec) or spec in message.split(":")[0] \
        else f"{spec}: {message}"


# ---- saved configs -----------------------------------------------------------------------------
def saved_config(spec: str | Spec):
    """The training config of a trained player (None for a bot): a run's config.yaml (a
    checkpoint's own where there is none), a checkpoint file's own, a snapshot's run's. Its game must be one this process trusts (a run directory
    or checkpoint may come from anyone, arena/trust.py); the training machine's key folder
    is dropped (playing needs no keys)."""
    from arena.checkpoints import check_saved_game, find_checkpoint, read_checkpoint
    from arena.config import ConfigError, config_from_dict

    s = spec if isinstance(spec, Spec) else parse_spec(spec)
    if s.kind == "bot":
        return None
    if s.kind == "run" and (s.path / "config.yaml").is_file():
        cfg = _run_config(s.text, s.path)  # the run's own config (its checkpoints' too)
        cfg.actors.curve_keys = None
        return cfg
    if s.kind in ("checkpoint", "run"):
        try:
            path = find_checkpoint(s.path)
            raw = read_checkpoint(path)["hyper_parameters"]["config"]
            check_saved_game(raw["game"]["name"], source=str(path))
        except CheckpointError as exc:
            raise CheckpointError(_with_spec(s.text, str(exc))) from None
        except (KeyError, TypeError, AttributeError):
            raise CheckpointError(f"{s.text}: the checkpoint carries no game config") from None
        if isinstance(raw.get("actors"), dict):
            raw = {**raw, "actors": {**raw["actors"], "curve_keys": None}}
        try:
            return config_from_dict(raw)
        except ConfigError as exc:
            raise CheckpointError(f"{s.text}: cannot read the checkpoint's config: "
                                  f"{exc}") from None
    cfg = _run_config(s.text, s.run_dir)
    cfg.actors.curve_keys = None
    return cfg


def _run_config(spec: str, run_dir: Path):
    """The run's config.yaml, its game checked against what this process trusts."""
    from arena.config import ConfigError, load_config
    from arena.trust import check_config_file
    from games.registry import UntrustedGameError

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{spec}: {run_dir} is not a run directory (no config.yaml)")
    try:
        check_config_file(path)
    except UntrustedGameError as exc:
        raise CheckpointError(_with_spec(spec, str(exc))) from None
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CheckpointError(f"{spec}: cannot read the run's config: {exc}") from None


def match_game(specs: list[str], game: str | None = None,
               options: Mapping[str, Any] | None = None) -> MatchGame:
    """The game the players of `specs` meet on: the first trained player's game and options
    (then `options` on top), else `game` (default the MOBA) with `options`. Every trained
    player must come from that game; `game`, when given, must agree."""
    from arena.trust import check_game
    from games.registry import UntrustedGameError

    found: tuple[str, str, dict] | None = None
    for spec in specs:
        cfg = saved_config(spec)
        if cfg is None:
            continue
        if found is None:
            found = (spec, cfg.game.name, dict(cfg.game.options))
        elif cfg.game.name != found[1]:
            raise CheckpointError(f"{spec}: trained on game {cfg.game.name!r}, but {found[0]} "
                                  f"on {found[1]!r}; a match is played on one game")
    if found is not None:
        if game is not None and game != found[1]:
            raise CheckpointError(f"{found[0]}: trained on game {found[1]!r}, not the "
                                  f"--game given ({game!r})")
        name, base = found[1], found[2]
    else:
        name, base = game or DEFAULT_GAME, {}
        try:
            check_game(name, source="--game")
        except UntrustedGameError as exc:
            raise CheckpointError(str(exc)) from None
    return MatchGame(name, {**base, **dict(options or {})})


# ---- loading -----------------------------------------------------------------------------------
def load_player(spec: str, game: MatchGame, *, name: str | None = None,
                device: str | torch.device = "cpu", deterministic: bool = False,
                cache: dict | None = None) -> Player:
    """A player from its spec (see the module docstring) for matches of `game`. `cache` (a
    dict) keeps loaded networks by spec, for callers that load the same player many times.
    Whether the networks fit the game is checked when the player takes a seat (`side`) or
    by `check_fits`."""
    s = parse_spec(spec)
    if s.kind == "bot":
        try:
            return BotPlayer(s.text, game.name)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc} (or a checkpoint file, a run directory, RUN_DIR@ID "
                                  f"or a snapshot file)") from None
    key = (spec, str(device))
    if cache is not None and key in cache:
        policies, per_agent, update, default = cache[key]
    else:
        cfg = saved_config(s)
        if cfg.game.name != game.name:
            raise CheckpointError(f"{spec}: trained on game {cfg.game.name!r}, this match is "
                                  f"{game.name!r}")
        weights, update = _weights(s)
        policies = _build_policies(spec, cfg, weights, _snapshot_archs(s))
        for policy in policies.values():
            policy.to(device).eval()
        per_agent, default = cfg.model.per_agent_weights, s.default_name
        if cache is not None:
            cache[key] = (policies, per_agent, update, default)
    return PolicyPlayer(name or default, policies, per_agent, update=update,
                        deterministic=deterministic, spec=spec, run_dir=s.run_dir)


def check_fits(player: Player, game: MatchGame) -> None:
    """CheckpointError unless `player` can play every team of `game` (a policy's networks
    fit its roles; a mixture bot has one member per agent of every team)."""
    if isinstance(player, PolicyPlayer) or (
            isinstance(player, BotPlayer) and parse_bot(game.name, player.name).is_mixture):
        vec = game.vec(1)
        try:
            if isinstance(player, PolicyPlayer):
                player.groups(vec)
            else:
                player.side(vec, seed=0)
        finally:
            vec.close()


def _weights(s: Spec) -> tuple[dict[str, torch.Tensor], int | None]:
    """The `policies.*` tensors a spec names, and its training update."""
    from arena.checkpoints import find_checkpoint, read_checkpoint
    from league.pool import OpponentPool, PoolError

    if s.kind in ("checkpoint", "run"):
        try:
            checkpoint = read_checkpoint(find_checkpoint(s.path))
        except CheckpointError as exc:
            raise CheckpointError(_with_spec(s.text, str(exc))) from None
        weights = {k: v for k, v in checkpoint["state_dict"].items()
                   if k.startswith("policies.")}
        try:
            update = int(checkpoint["arena"]["updates"])
        except (KeyError, TypeError, ValueError):
            update = None
        return weights, update
    if s.snapshot is None:
        return _read_snapshot_file(s.text, s.path)
    pools = pool_dirs(s.run_dir)
    if not pools:
        raise CheckpointError(f"{s.text}: the run has no league snapshots "
                              f"(no {s.run_dir / 'league'}/<role>/pool.json)")
    weights: dict[str, torch.Tensor] = {}
    update = None
    for role, folder in pools.items():
        try:
            pool = OpponentPool.open(folder)
            update = pool.get(s.snapshot).update
            weights.update(pool.load_weights(s.snapshot))
        except (PoolError, KeyError) as exc:
            raise CheckpointError(f"{s.text}: role {role!r}: {exc}") from None
    return weights, update


def _snapshot_archs(s: Spec) -> dict[str, Any]:
    """The architectures a snapshot stored for its networks (merged over its roles' files),
    empty for checkpoints and for snapshots written before architectures were stored."""
    from league.pool import OpponentPool, PoolError, arch_from_metadata

    if s.kind != "snapshot":
        return {}
    found: list[dict[str, Any] | None] = []
    try:
        if s.snapshot is None:
            from safetensors import safe_open

            with safe_open(str(s.path), framework="pt", device="cpu") as fh:
                found.append(arch_from_metadata(fh.metadata() or {}, str(s.path)))
        else:
            for folder in pool_dirs(s.run_dir).values():
                found.append(OpponentPool.open(folder).load_arch(s.snapshot))
    except (PoolError, OSError) as exc:
        raise CheckpointError(_with_spec(s.text, str(exc))) from None
    merged: dict[str, Any] = {}
    for arch in found:
        if arch:
            merged.setdefault("policies", {}).update(arch.get("policies") or {})
    return merged


def _build_policies(spec: str, cfg: Any, weights: Mapping[str, torch.Tensor],
                    archs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The networks of a saved config (one per policy group of its game), with `weights`;
    a snapshot's network with the architecture it stored (`archs`), its input and output
    layers adapted to the game of `cfg` (arena/learn/surgery.py)."""
    from arena.learn.networks import build_policy, group_module_key, policy_groups
    from arena.learn.surgery import SurgeryError, snapshot_arch, snapshot_policy

    try:
        probe = cfg_vec(cfg)
    except Exception as exc:  # noqa: BLE001 - a game that cannot be built here
        raise CheckpointError(f"{spec}: cannot build its game {cfg.game.name!r}: {exc}") from None
    try:
        groups = policy_groups(probe, cfg.model.per_agent_weights)
    finally:
        probe.close()
    policies = {}
    for g in groups:
        prefix = f"policies.{group_module_key(g.key)}."
        own = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        if not own:
            continue  # a snapshot file holds one role's networks
        try:
            policy = snapshot_policy(own, snapshot_arch(archs, group_module_key(g.key), spec),
                                     g.role, lambda g=g: build_policy(g.role, cfg), spec)
        except SurgeryError as exc:
            raise CheckpointError(f"{spec}: network {g.key!r} cannot read this game's "
                                  f"observation: {exc}") from None
        except (RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{spec}: the weights of {g.key!r} do not fit the network of "
                                  f"its config: {str(exc).splitlines()[0]}") from None
        policies[g.key] = policy
    if not policies:
        raise CheckpointError(f"{spec}: holds no network of its game's policy groups "
                              f"{[g.key for g in groups]}")
    return policies


def cfg_vec(cfg: Any, num_games: int = 1):
    from games.vector import make_vec

    return make_vec(cfg.game.name, num_games, **cfg.game.options)


def _read_snapshot_file(spec: str, path: Path, tensors: bool = True
                        ) -> tuple[dict[str, torch.Tensor], int | None]:
    from safetensors import safe_open

    try:
        weights: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            for key in fh.keys() if tensors else ():
                weights[key] = fh.get_tensor(key)
    except Exception as exc:  # noqa: BLE001 - truncated file, garbage bytes, ...
        raise CheckpointError(f"{spec}: not a readable snapshot ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    update = metadata.get("update")
    if update is None:  # older files: the pool's index knows
        try:
            index = json.loads((path.parent / "pool.json").read_text())
            update = next(e["update"] for e in index["snapshots"] if e["file"] == path.name)
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            update = None
    try:
        return weights, None if update is None else int(update)
    except ValueError:
        return weights, None


__all__ = ["BotPlayer", "CheckpointError", "MatchGame", "Player", "PolicyPlayer", "RANDOM_BOT",
           "Spec", "check_fits", "checkpoint_update", "describe", "load_player", "match_game",
           "parse_spec", "pool_dirs", "saved_config", "snapshot_ids"]
