"""Things that play a MOBA team — scripted bots and trained policies — behind one interface,
and the batched match runner that tournaments, `arena watch` and evaluations share.

A player spec (command line, tournaments, `load_player`) is one of:

    random | passive | lasthitter | pusher     a scripted bot (games/moba/bots.py)
    path/to/update-000100.ckpt                 a training checkpoint (weights only)
    runs/NAME                                  a run directory: its newest checkpoint
    runs/NAME@ID                               league snapshot ID of a run (its pool in
                                               runs/NAME/league/hero, weights of the run's
                                               config.yaml)
    runs/NAME/league/hero/snapshot-000003.safetensors   the same snapshot, by its file

A bot name wins over a file of the same name (write ./random for the file). A path that
exists is taken as a path even if it contains '@'. Every problem with a spec — a missing
file, a corrupt or foreign checkpoint, a snapshot of another game or of other settings —
raises `CheckpointError` with a message that starts with the spec.

Players. `begin(heroes)` starts new games: `heroes` (rows,) is the hero slot (0..2n-1) that
each row plays, so a learner with per-agent weights plays each row with its slot's network;
`act(obs (rows, D) float32, mask (rows, A), episode_start (rows,) bool) -> (rows,) int64`.
A `PolicyPlayer` keeps one LSTM state per row (reset where `episode_start`) and samples
from its own seeded `torch.Generator`, so a match is reproducible and never touches the
global torch random stream. Only the MOBA is supported for now (the bots exist only there).

The runner. `play_matches([(A, B), ...], games=G, seed=S)` plays G games per pairing in one
batched `MobaCore`; every distinct player object acts once per tick on all its rows
(one forward per policy group). In each pairing A is radiant in the first ceil(G/2)
games and dire in the rest, and game k of the second half replays the map seed of game k of
the first half with the sides swapped. `play_match(A, B, ...)` is one pairing: A's score per
game (1 win, 0.5 draw, 0 loss).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from arena.checkpoints import CheckpointError
from games.moba import MobaConfig, MobaCore, MobaLayout, make_config
from games.moba.bots import BOT_NAMES, make_bot
from games.moba.match import MatchResult, play_games

GAME = "moba"
SPEC_HELP = ("a bot (" + ", ".join(BOT_NAMES) + "), a checkpoint file, a run directory, "
             "RUN_DIR@ID (a league snapshot) or a snapshot file")


# ---- players ------------------------------------------------------------------------------
class Player(abc.ABC):
    """Plays the heroes of one side in a batch of games (rows = games x heroes)."""

    name: str = "player"
    kind: str = "player"  # "bot" or "policy"
    update: int | None = None  # training update of a checkpoint or snapshot
    run_dir: Path | None = None  # the run it comes from
    spec: str | None = None  # how it was loaded

    def begin(self, heroes: np.ndarray | int) -> None:
        """New games. `heroes`: the hero slot of each row, or just the number of rows."""

    @abc.abstractmethod
    def act(self, obs: np.ndarray, mask: np.ndarray, episode_start: np.ndarray) -> np.ndarray:
        """obs (rows, D), mask (rows, A), episode_start (rows,) bool -> (rows,) int64."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class BotPlayer(Player):
    """A scripted MOBA bot (stateless apart from the random bot's seeded generator)."""

    kind = "bot"

    def __init__(self, name: str, layout: MobaLayout, seed: int = 0) -> None:
        self.name = self.spec = name
        self.bot = make_bot(name, layout, seed=seed)

    def act(self, obs, mask, episode_start):
        return self.bot.act(obs, mask)


class PolicyPlayer(Player):
    """A learner's policies (anything with `groups` and `policy_for(key)`, such as a
    PPOLearner). Each row has its own LSTM state, reset at episode start; with per-agent
    weights a row is played by the network of its hero slot. Actions are sampled from the
    masked policy with the player's own generator (`deterministic`: the most likely one)."""

    kind = "policy"

    def __init__(self, name: str, learner: Any, update: int | None = None, *, seed: int = 0,
                 deterministic: bool = False, spec: str | None = None,
                 run_dir: Path | None = None) -> None:
        self.name = name
        self.learner = learner
        self.update = getattr(learner, "updates", None) if update is None else update
        self.seed = int(seed)
        self.deterministic = bool(deterministic)
        self.spec = spec
        self.run_dir = run_dir
        self._plan: list[list[Any]] = []  # [policy, rows or None (all), state]
        self._generators: dict[torch.device, torch.Generator] = {}
        self._rows = 0

    def _generator(self, device: torch.device) -> torch.Generator:
        gen = self._generators.get(device)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed + len(self._generators))
            self._generators[device] = gen
        return gen

    def begin(self, heroes: np.ndarray | int) -> None:
        groups = list(self.learner.groups)
        if isinstance(heroes, (int, np.integer)):
            if len(groups) != 1:
                raise ValueError(f"{self.name}: a learner with several policy groups (per-agent "
                                 f"weights) needs the hero slot of every row, not a row count")
            n, heroes = int(heroes), None
        else:
            heroes = np.asarray(heroes, dtype=np.int64).ravel()
            n = len(heroes)
        self._rows = n
        self._plan = []
        covered = np.zeros(n, bool)
        for g in groups:
            if heroes is None:
                rows = np.arange(n)
            else:
                rows = np.flatnonzero(np.isin(heroes, g.slots))
            if not len(rows):
                continue
            covered[rows] = True
            policy = self.learner.policy_for(g.key)
            device = policy.actor.weight.device
            index = None if len(rows) == n else torch.from_numpy(rows).to(device)
            self._plan.append([policy, rows, index, policy.initial_state(len(rows), device)])
        if n and not covered.all():
            missing = sorted(set(heroes[~covered].tolist()))
            raise ValueError(f"{self.name}: no policy group plays hero slot(s) {missing}")

    @torch.no_grad()
    def act(self, obs, mask, episode_start):
        if len(obs) != self._rows:
            raise ValueError(f"{self.name}: begin() was given {self._rows} rows, act() {len(obs)}")
        out = np.empty(len(obs), np.int64)
        obs_t = torch.from_numpy(np.ascontiguousarray(obs))
        mask_t = torch.from_numpy(np.ascontiguousarray(mask))
        start_t = torch.from_numpy(np.ascontiguousarray(episode_start, dtype=bool))
        for plan in self._plan:
            policy, rows, index, state = plan
            device = policy.actor.weight.device
            o, m, s = obs_t.to(device), mask_t.to(device).bool(), start_t.to(device)
            if index is not None:
                o, m, s = o[index], m[index], s[index]
            logits, _, plan[3] = policy.step(o, state, s, m)
            if self.deterministic:
                action = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits.float(), dim=-1)  # masked actions: exactly 0
                action = torch.multinomial(probs, 1, generator=self._generator(device)).squeeze(1)
            out[rows] = action.cpu().numpy()
        return out


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
        if self.kind == "run":
            return run or self.text
        if self.kind == "checkpoint":
            return f"{run}/{self.path.stem}" if run else self.path.stem
        if self.snapshot is not None:
            return f"{run}@{self.snapshot}"
        match = re.fullmatch(r"snapshot-0*(\d+)", self.path.stem)
        ident = match.group(1) if match else self.path.stem
        return f"{run}@{ident}" if run else self.path.stem


def _dir_name(path: Path) -> str:
    return path.name or path.resolve().name


def parse_spec(spec: str) -> Spec:
    """Classify a spec (see the module docstring); CheckpointError if it names nothing."""
    if not isinstance(spec, str) or not spec:
        raise CheckpointError(f"{spec!r}: empty player spec; expected {SPEC_HELP}")
    if spec in BOT_NAMES:
        return Spec(spec, "bot")
    path = Path(spec).expanduser()
    if path.is_dir():
        return Spec(spec, "run", path, path)
    if path.is_file():
        if path.suffix == ".safetensors":
            return Spec(spec, "snapshot", path, _run_of_snapshot(path))
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
    if "/" not in spec and "\\" not in spec and not path.suffix:
        raise CheckpointError(f"unknown bot {spec!r}; valid bots: {', '.join(BOT_NAMES)} "
                              f"(or a checkpoint file, a run directory, RUN_DIR@ID or a "
                              f"snapshot file)")
    raise CheckpointError(f"{spec}: no such checkpoint file or run directory")


def _run_of_snapshot(path: Path) -> Path:
    """runs/NAME/league/ROLE/snapshot-N.safetensors -> runs/NAME."""
    run = path.resolve().parent.parent.parent
    return run


# ---- loading ---------------------------------------------------------------------------------
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
            pool_dir = s.run_dir / "league" / "hero"
            if not (pool_dir / "pool.json").is_file():
                raise CheckpointError(f"{s.text}: the run has no league snapshots "
                                      f"(no {pool_dir / 'pool.json'})")
            return s.default_name, OpponentPool.open(pool_dir).get(s.snapshot).update, s.run_dir
        _, update = _read_snapshot_file(s.text, s.path, tensors=False)
        return s.default_name, update, s.run_dir
    except (PoolError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise CheckpointError(_with_spec(s.text, str(exc))) from None
        raise CheckpointError(f"{s.text}: {exc}") from None


def _as_config(game_options: dict | MobaConfig | None) -> MobaConfig:
    if isinstance(game_options, MobaConfig):
        return game_options
    return make_config(**dict(game_options or {}))


def _with_spec(spec: str, message: str) -> str:
    return message if message.startswith(spec) or spec in message.split(":")[0] \
        else f"{spec}: {message}"


def game_options_of(spec: str) -> dict | None:
    """The game options a trained player was trained with (None for a bot); the MOBA only.
    The game named in the file must be one this process trusts (arena/trust.py)."""
    from arena.checkpoints import check_saved_game, find_checkpoint, read_checkpoint

    s = parse_spec(spec)
    if s.kind == "bot":
        return None
    if s.kind in ("checkpoint", "run"):
        try:
            path = find_checkpoint(s.path)
            config = read_checkpoint(path)["hyper_parameters"]["config"]
            name, options = config["game"]["name"], config["game"].get("options", {})
            check_saved_game(name, source=str(path))
        except CheckpointError as exc:
            raise CheckpointError(_with_spec(spec, str(exc))) from None
        except (KeyError, TypeError, AttributeError):
            raise CheckpointError(f"{spec}: the checkpoint carries no game config") from None
    else:
        cfg = _run_config(spec, s.run_dir)
        name, options = cfg.game.name, cfg.game.options
    _check_game(spec, name)
    return dict(options)


def _check_game(spec: str, name: str) -> None:
    if name != GAME:
        raise CheckpointError(f"{spec}: trained on game {name!r}; tournaments and arena watch "
                              f"play the MOBA only ({GAME!r})")


def _run_config(spec: str, run_dir: Path):
    """The run's config.yaml, its game checked against what this process trusts (a run
    directory may come from anyone)."""
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


def load_policy(spec: str | Spec) -> tuple[Any, str, int | None, Path | None]:
    """The learner named by a checkpoint, run or snapshot spec, on CPU in eval mode:
    (learner, default name, training update, run directory)."""
    from arena.checkpoints import load_learner

    s = spec if isinstance(spec, Spec) else parse_spec(spec)
    if s.kind == "bot":
        raise CheckpointError(f"{s.text}: a scripted bot, not a trained policy")
    if s.kind in ("checkpoint", "run"):
        try:
            learner = load_learner(s.path, expect_game=GAME)
        except CheckpointError as exc:
            message = str(exc)
            if "expected 'moba'" in message:
                message += " (tournaments and arena watch play the MOBA only)"
            raise CheckpointError(_with_spec(s.text, message)) from None
        return learner, s.default_name, learner.updates, s.run_dir
    return _load_snapshot(s)


def _load_snapshot(s: Spec) -> tuple[Any, str, int | None, Path]:
    from arena.config import to_dict
    from arena.learner import PPOLearner
    from league.pool import OpponentPool, PoolError

    spec = s.text
    cfg = _run_config(spec, s.run_dir)
    _check_game(spec, cfg.game.name)
    cfg.actors.curve_keys = None  # the training machine's key folder: playing needs none
    try:
        learner = PPOLearner(to_dict(cfg))
    except Exception as exc:  # noqa: BLE001 - a config the model cannot be built from
        raise CheckpointError(f"{spec}: cannot build the run's model: {exc}") from None
    roles = sorted({g.role.name for g in learner.groups})
    if s.snapshot is not None:
        pool_dir = s.run_dir / "league" / roles[0]
        if not (pool_dir / "pool.json").is_file():
            raise CheckpointError(f"{spec}: the run has no league snapshots "
                                  f"(no {pool_dir / 'pool.json'})")
        try:
            pool = OpponentPool.open(pool_dir)
            snap = pool.get(s.snapshot)
            weights = pool.load_weights(snap.id)
        except PoolError as exc:
            raise CheckpointError(f"{spec}: {exc}") from None
        update = snap.update
    else:
        weights, update = _read_snapshot_file(spec, s.path)
    _load_policy_weights(spec, learner, weights)
    learner.updates = update if update is not None else 0
    learner.eval()
    return learner, s.default_name, update, s.run_dir


def _read_snapshot_file(spec: str, path: Path, tensors: bool = True
                        ) -> tuple[dict[str, torch.Tensor], int | None]:
    import json

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


def _load_policy_weights(spec: str, learner: Any, weights: dict[str, torch.Tensor]) -> None:
    """Load a snapshot's `policies.*` tensors, insisting that they cover every policy."""
    expected = {k for k in learner.state_dict() if k.startswith("policies.")}
    got = set(weights)
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    if missing or unexpected:
        what = []
        if missing:
            what.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            what.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"{spec}: the snapshot's tensors do not fit the run's model: "
                              f"{', '.join(what)}")
    try:
        learner.load_state_dict(weights, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"{spec}: the snapshot's weights do not fit the run's model: "
                              f"{str(exc).splitlines()[0]}") from None


def check_fits(spec: str, learner: Any, config: MobaConfig) -> None:
    """CheckpointError unless the learner's policies fit this game's spaces."""
    layout = MobaLayout(config)
    for g in learner.groups:
        role = g.role
        if (role.obs_dim, role.num_actions) != (layout.obs_dim, layout.num_actions):
            raise CheckpointError(
                f"{spec}: trained for observations/actions of size {role.obs_dim}/"
                f"{role.num_actions}, this game has {layout.obs_dim}/{layout.num_actions} "
                f"(another team size or setting?)")
    slots = {s for g in learner.groups for s in g.slots}
    if slots != set(range(layout.num_heroes)):
        raise CheckpointError(f"{spec}: trained for {len(slots)} heroes, this game has "
                              f"{layout.num_heroes} (another team size?)")


def load_player(spec: str, game_options: dict | MobaConfig | None = None, seed: int = 0, *,
                name: str | None = None, device: str | torch.device = "cpu",
                deterministic: bool = False, cache: dict | None = None) -> Player:
    """A player from its spec (see the module docstring), checked against the game it will
    play (`game_options`: MobaConfig keyword options or a MobaConfig; default settings if
    None). `seed` seeds the bot's or the policy's sampling. `cache` (a dict) keeps loaded
    learners by spec, for callers that load the same player many times."""
    config = _as_config(game_options)
    s = parse_spec(spec)
    if s.kind == "bot":
        return BotPlayer(s.text, MobaLayout(config), seed)
    if cache is not None and spec in cache:
        learner, default, update, run_dir = cache[spec]
    else:
        learner, default, update, run_dir = load_policy(s)
        learner.to(device)
        if cache is not None:
            cache[spec] = (learner, default, update, run_dir)
    check_fits(spec, learner, config)
    return PolicyPlayer(name or default, learner, update, seed=seed, deterministic=deterministic,
                        spec=spec, run_dir=run_dir)


# ---- matches ---------------------------------------------------------------------------------
def score_of(winners: np.ndarray, team: np.ndarray | int) -> np.ndarray:
    """Score of `team` per game: 1 win, 0.5 draw, 0 loss."""
    w = np.asarray(winners).astype(np.int64)
    return np.where(w == team, 1.0, np.where(w < 0, 0.5, 0.0))


def play_matches(pairings: Sequence[tuple[Player, Player]], *, games: int, seed: int,
                 game_options: dict | MobaConfig | None = None,
                 on_step: Callable[[MobaCore], None] | None = None) -> list[np.ndarray]:
    """Play every pairing (A, B) for `games` games, all in one batched MobaCore: pairing i
    holds games [i*games, (i+1)*games); A is radiant in the first ceil(games/2) of them and
    dire in the rest; game k of a pairing is reset with seed + i*games + k mod ceil(games/2)
    (so both halves play the same maps). Returns A's scores per game for each pairing."""
    if isinstance(games, bool) or not isinstance(games, (int, np.integer)) or games < 1:
        raise ValueError(f"games must be a positive int, got {games!r}")
    if not pairings:
        raise ValueError("play_matches: no pairings")
    config = _as_config(game_options)
    n, P, G = config.team_size, len(pairings), int(games)
    B = P * G
    first = (G + 1) // 2
    k = np.arange(G)
    a_team = (k >= first).astype(np.int64)  # A's team in game k of every pairing
    offsets = (np.repeat(np.arange(P) * G, G) + np.tile(k % first, P)).astype(np.uint64)
    seeds = np.uint64(int(seed) % 2**64) + offsets  # wraps around like MobaCore.reset
    core = MobaCore(config, num_games=B, autoreset=False)
    r = core.reset(seed=seeds)
    if on_step is not None:
        on_step(core)
    # every distinct player object acts once per tick on all of its rows
    seats: dict[int, list[Any]] = {}
    hero = np.arange(n)
    for i, (a, b) in enumerate(pairings):
        for player, team in ((a, a_team), (b, 1 - a_team)):
            gi = np.repeat(i * G + k, n)
            hi = (team[:, None] * n + hero[None, :]).ravel()
            seat = seats.setdefault(id(player), [player, [], []])
            seat[1].append(gi)
            seat[2].append(hi)
    plan = []
    for player, gis, his in seats.values():
        gi, hi = np.concatenate(gis), np.concatenate(his)
        player.begin(hi)
        plan.append((player, gi, hi, np.ones(len(gi), bool), np.zeros(len(gi), bool)))
    actions = np.zeros((B, 2 * n), np.int64)
    tick = 0
    while not r.dones.all():
        for player, gi, hi, at_start, later in plan:
            actions[gi, hi] = player.act(r.obs[gi, hi], r.action_mask[gi, hi],
                                         at_start if tick == 0 else later)
        r = core.step(actions)
        tick += 1
        if on_step is not None:
            on_step(core)
    scores = score_of(r.winners, np.tile(a_team, P))
    return [scores[i * G:(i + 1) * G] for i in range(P)]


def play_match(a: Player, b: Player, *, games: int, seed: int,
               game_options: dict | MobaConfig | None = None) -> np.ndarray:
    """A's score in each of `games` games against B (1 win, 0.5 draw, 0 loss): A is radiant
    in the first ceil(games/2) games and dire in the rest, all in one batched core."""
    return play_matches([(a, b)], games=games, seed=seed, game_options=game_options)[0]


class _Seat:
    """Adapts a Player to the bot interface of games.moba.match.play_games (one side of
    every game; rows = games x heroes of that side, all games starting together)."""

    def __init__(self, player: Player, side: int, team_size: int) -> None:
        self.player, self.side, self.n = player, side, team_size
        self.first = True

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.first:
            self.player.begin(self.side * self.n + np.arange(len(obs)) % self.n)
        starts = np.full(len(obs), self.first)
        self.first = False
        return self.player.act(obs, mask, starts)


def play(radiant: Player, dire: Player, *, games: int, seed: int,
         game_options: dict | MobaConfig | None = None,
         on_step: Callable[[MobaCore], None] | None = None) -> MatchResult:
    """`games` batched games, `radiant` against `dire`, with the full MatchResult
    (games.moba.match.play_games: winners, lengths, net worth, event totals)."""
    config = _as_config(game_options)
    n = config.team_size
    if radiant is dire:
        raise ValueError("play: radiant and dire must be different player objects "
                         "(load the same spec twice)")
    return play_games(_Seat(radiant, 0, n), _Seat(dire, 1, n), num_games=games, seed=seed,
                      config=config, on_step=on_step)
