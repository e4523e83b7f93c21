"""The `arena` command line.

    arena train [CONFIG] [key=value ...] train by self-play (default: configs/default.yaml)
    arena train --resume runs/NAME       continue a run from its last checkpoint
    arena train --check [CONFIG] [k=v]   check a config without training or writing
    arena games                          list the registered games, their teams and spaces
    arena tournament SPEC... [--bots]    round robin of checkpoints, snapshots and bots: ranked
                                         table, tournament.json/.csv, TensorBoard
    arena watch A B --out m.gif          play one MOBA match (bots or trained players) as a GIF
    arena actor --connect tcp://H:P      collect rollouts for a running learner (actors.listen)
    arena keys DIR                       make CurveZMQ keys for learner and actors

A player SPEC is a bot name, a checkpoint file, a run directory, RUN_DIR@ID (a league
snapshot) or a snapshot file (arena/players.py).

`main(argv)` returns the exit status instead of exiting, so tests and other programs can
call it: 0 success, 1 a failure while running, 2 a usage error (bad option, unknown bot,
invalid game setting, a missing, corrupt or foreign checkpoint or run, a run directory held
by another process, a game that is not trusted), 130 and 143 a training run stopped by
SIGINT or SIGTERM after saving a checkpoint. Errors are one line on stderr, never a
traceback; progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

PROG = "arena"


class UsageError(Exception):
    """Bad input from the user: reported on one line, exit status 2."""


# ---- arena train ------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    from arena.config import ConfigError
    from arena.train import TrainingStopped, check_only, main_train

    _allow_games(args)
    try:
        if args.check:
            print(check_only(args.config, list(args.overrides), args.resume))
            return 0
        run_dir = main_train(args.config, list(args.overrides), args.resume)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    except TrainingStopped as e:
        print(f"{PROG} train: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank == 0:  # under DDP every rank returns here; one line is enough
        print(f"run finished: {run_dir} ({_how_it_ended(run_dir)})")
    return 0


def _how_it_ended(run_dir: Path) -> str:
    """Why training stopped: the update it reached against trainer.max_updates, or the
    trainer.max_time that cut it short."""
    from arena.checkpoints import latest_in_run, recorded_update
    from arena.config import ConfigError, load_config

    ckpt = latest_in_run(run_dir)
    update = recorded_update(ckpt) if ckpt is not None else None
    try:
        t = load_config(run_dir / "config.yaml").trainer
    except ConfigError:
        return f"update {update}"
    if update is not None and update < t.max_updates and t.max_time:
        return f"stopped at update {update} of {t.max_updates} by trainer.max_time={t.max_time}"
    return f"update {update} of {t.max_updates}"


# ---- arena actor / arena keys ----------------------------------------------------------------
def _cmd_actor(args: argparse.Namespace) -> int:
    from arena.actors import ActorError, run_actor
    from arena.transport import KeysError

    if not re.fullmatch(r"tcp://[^:/\s]+:\d{1,5}", args.connect):
        raise UsageError(f"--connect: expected tcp://HOST:PORT, got {args.connect!r}")
    _allow_games(args)
    print(f"actor: connecting to {args.connect}", file=sys.stderr, flush=True)
    try:
        sent = run_actor(args.connect, keys=args.keys, threads=args.threads,
                         hello_timeout_s=args.timeout)
    except (ActorError, KeysError) as e:
        raise UsageError(str(e)) from None
    print(f"actor: the learner stopped; {sent} rollouts sent", file=sys.stderr)
    return 0


def _add_allow_game(p: argparse.ArgumentParser, what: str) -> None:
    """--allow-game for a command that builds games named in configs written by others."""
    p.add_argument("--allow-game", action="append", default=[], metavar="MODULE",
                   help=f"{what} may name games from MODULE (a package, a module or a whole "
                        f"pettingzoo:MODULE:FACTORY spec); repeatable, also ARENA_ALLOW_GAMES="
                        f"MOD1,MOD2. Otherwise only registered games and PettingZoo's own "
                        f"factories (pettingzoo, mpe2, magent2) are built")


def _allow_games(args: argparse.Namespace) -> None:
    """Trust the games named by --allow-game in configs this command reads from others."""
    from arena.trust import allow_games

    try:
        allow_games(args.allow_game)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _cmd_keys(args: argparse.Namespace) -> int:
    from arena.transport import KeysError, create_keys

    try:
        keys = create_keys(args.directory)
    except KeysError as e:
        raise UsageError(str(e)) from None
    d = keys.directory
    print(f"CURVE keys written to {d}\n"
          f"  learner:  actors.curve_keys={d}  (uses server.key_secret, authorized/)\n"
          f"  actors:   arena actor --connect tcp://HOST:PORT --keys DIR, where DIR holds "
          f"server.key and client.key_secret\n"
          f"  keep *.key_secret private; add more actor keys as public .key files in "
          f"{d / 'authorized'}")
    return 0


# ---- arena tournament -------------------------------------------------------------------
def _game_options(specs: Sequence[str], team_size: int | None,
                  max_ticks: int | None) -> dict[str, Any]:
    """The game of a match: the settings of the first trained player among `specs` (the
    MOBA's defaults when there is none), with --team-size and --max-ticks on top."""
    from arena.checkpoints import CheckpointError
    from arena.players import game_options_of
    from games.moba.config import make_config

    options: dict[str, Any] = {}
    for spec in specs:
        try:
            found = game_options_of(spec)
        except CheckpointError as e:
            raise UsageError(str(e)) from None
        if found is not None:
            options = dict(found)
            break
    if team_size is not None:
        options["team_size"] = team_size
    if max_ticks is not None:
        options["max_ticks"] = max_ticks
    try:
        make_config(**options)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    return options


def _cmd_tournament(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from arena.checkpoints import CheckpointError
    from arena.players import load_player
    from arena.tournament import entrants_from, log_to_tensorboard, run_tournament, write_results
    from games.moba.bots import BOT_NAMES

    _allow_games(args)
    bots = [] if args.bots is None else (list(args.bots) or list(BOT_NAMES))
    try:
        entrants = entrants_from(list(args.specs), bots)
    except (CheckpointError, ValueError) as e:
        raise UsageError(str(e)) from None
    if not entrants:
        raise UsageError("no participants: give run directories, checkpoints, RUN_DIR@ID "
                         "snapshots or bot names, and/or --bots")
    if len(entrants) < 2:
        raise UsageError(f"a tournament needs at least 2 participants, got 1 "
                         f"({entrants[0].name}); add more, e.g. --bots")
    options = _game_options([e.spec for e in entrants], args.team_size, args.max_ticks)
    cache: dict = {}
    try:  # fail before playing: every participant must load and fit the game
        for e in entrants:
            load_player(e.spec, options, cache=cache)
    except (CheckpointError, ValueError) as e:
        raise UsageError(str(e)) from None
    del cache
    if args.out is not None:
        out = Path(args.out).expanduser()
    else:
        out = next((Path(e.run) for e in entrants if e.run), Path("."))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot create the folder: {e.strerror or e}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: the folder is not writable")

    from games.moba.config import make_config

    config = make_config(**options)
    n = len(entrants)
    pairs = n * (n - 1) // 2
    print(f"tournament: {n} players, {pairs} pairs x {args.games} games "
          f"({config.team_size}v{config.team_size}, up to {config.max_ticks} ticks), "
          f"seed {args.seed}, {args.workers} worker(s)", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("pairs", total=pairs)
        table, results = run_tournament(entrants, games=args.games, seed=args.seed,
                                        workers=args.workers, game_options=options,
                                        progress=lambda: bar.advance(task))
    seconds = time.perf_counter() - t0
    updates = {e.name: e.update for e in entrants}
    shown = Table(title=f"tournament: {n} players, {args.games} games per pair")
    with_updates = any(u is not None for u in updates.values())
    columns = ("rank", "name", *(("update",) if with_updates else ()), "mu", "mu - 3 sigma",
               "win rate", "games")
    for col in columns:
        shown.add_column(col, justify="left" if col == "name" else "right",
                         no_wrap=col == "name")
    for r in table.table():
        update = updates.get(r["name"])
        shown.add_row(str(r["rank"]), r["name"] + (" (anchor)" if r["anchor"] else ""),
                      *(("-" if update is None else str(update),) if with_updates else ()),
                      f"{r['mu']:.1f}", f"{r['conservative']:.1f}",
                      "-" if r["win_rate"] is None else f"{r['win_rate']:.2f}", str(r["games"]))
    width = max(100, 60 + max(len(e.name) for e in entrants))
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else width).print(shown)
    meta = {"games_per_pair": args.games, "seed": args.seed, "workers": args.workers,
            "game_options": options, "seconds": round(seconds, 3),
            "participants": [{"name": e.name, "spec": e.spec, "update": e.update, "run": e.run}
                             for e in entrants]}
    json_path, csv_path = write_results(out, table, entrants, results, meta)
    log_to_tensorboard(out / "tb", table, entrants)
    print(f"wrote {json_path} and {csv_path}; TensorBoard: {out / 'tb'} "
          f"({seconds:.1f} s for {pairs * args.games} games)")
    return 0


# ---- arena games ------------------------------------------------------------------------
def _cmd_games(args: argparse.Namespace) -> int:
    import games
    from games.catalog import describe

    failed = 0
    for i, spec in enumerate(games.list_games()):
        if i:
            print()
        print(f"{spec.name}: {spec.description}")
        try:
            lines = describe(spec.name)
        except Exception as e:  # a broken or missing game must not hide the others
            print(f"  (cannot build it: {type(e).__name__}: {e})")
            print(f"{PROG} games: error: game {spec.name!r} cannot be built: {e}",
                  file=sys.stderr)
            failed += 1
            continue
        print("\n".join(lines))
    return 1 if failed else 0


# ---- arena watch ------------------------------------------------------------------------
_TB_MAX_WIDTH = 384  # `watch --tensorboard` logs a bounded preview, never every full-size frame
_TB_MAX_FRAMES = 200


class _Progress:
    """Progress of a match on a stream: a live bar on a terminal, else a line per 10%."""

    def __init__(self, total: int, stream: TextIO, recorder: Any) -> None:
        self.total = max(1, int(total))
        self.stream = stream
        self.recorder = recorder
        self.live = bool(getattr(stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.next_mark = 0.1
        self.core: Any = None
        self.tick = 0
        self.printed = -1

    def __call__(self, core: Any) -> None:
        self.core = core
        self.tick = int(core.tick[0])
        now = time.perf_counter()
        frac = self.tick / self.total
        if self.live:
            if now - self.last_draw >= 0.2:
                self.last_draw = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        elif frac >= self.next_mark:
            while self.next_mark <= frac:
                self.next_mark += 0.1
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()
            self.printed = self.tick

    def _line(self, now: float) -> str:
        frac = min(1.0, self.tick / self.total)
        width = 24
        filled = int(round(frac * width))
        rate = self.tick / max(now - self.start, 1e-9)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.tick}/{self.total} ticks "
                f"{100 * frac:3.0f}%  {rate:,.0f} ticks/s  {self.recorder.count} frames")

    def close(self) -> None:
        """The final state: on a terminal ends the live bar, else prints a last line unless
        the last 10% line already showed it."""
        if self.live:
            self.stream.write("\r" + self._line(time.perf_counter()) + "\n")
        elif self.tick != self.printed:
            self.stream.write(self._line(time.perf_counter()) + "\n")
        self.stream.flush()


def _cmd_watch(args: argparse.Namespace) -> int:
    from arena.checkpoints import CheckpointError
    from arena.players import load_player, play
    from games.moba.config import make_config
    from games.moba.layout import TEAM_NAMES
    from games.gif import ClipPreview
    from games.moba.render import FrameRecorder

    _allow_games(args)
    overrides = _game_options([args.radiant, args.dire], args.team_size, args.max_ticks)
    config = make_config(**overrides)
    out = _check_out_path(args.out)
    if args.tensorboard:
        _check_log_dir(args.tensorboard)
    try:
        radiant = load_player(args.radiant, overrides, seed=args.seed)
        dire = load_player(args.dire, overrides, seed=args.seed + 1)
    except (CheckpointError, ValueError) as e:
        raise UsageError(str(e)) from None
    view = None if args.view == "full" else args.view
    preview = ClipPreview(_TB_MAX_WIDTH, _TB_MAX_FRAMES) if args.tensorboard else None
    print(f"{radiant.name} (radiant) vs {dire.name} (dire): {config.team_size}v{config.team_size}, "
          f"seed {args.seed}, up to {config.max_ticks} ticks, {args.view} view")
    t0 = time.perf_counter()
    try:
        # frames stream into the GIF as they are drawn: memory stays about one frame
        with FrameRecorder(game=0, team=view, every=args.every, scale=args.scale, out=out,
                           fps=args.fps, preview=preview) as recorder:
            progress = _Progress(config.max_ticks, sys.stderr, recorder)

            def on_step(core: Any) -> None:
                recorder(core)
                progress(core)

            result = play(radiant, dire, games=1, seed=args.seed, game_options=overrides,
                          on_step=on_step)
            progress.close()
            path = recorder.finish()  # the last frame shows the end, even when `every` skipped it
    except OSError as e:
        raise RuntimeError(f"could not write {out}: {e}") from e
    t1 = time.perf_counter()
    if preview is not None:
        from torch.utils.tensorboard import SummaryWriter

        from arena.media import log_gif

        step = next((p.update for p in (radiant, dire) if p.update is not None), 0)
        tag = f"match/{_tag(radiant.name)}_vs_{_tag(dire.name)}"
        with SummaryWriter(args.tensorboard) as writer:
            log_gif(writer, tag, preview.frames, step=step, fps=preview.fps(args.fps))

    winner = int(result.winners[0])
    length = int(result.lengths[0])
    how = ""
    if result.ancient_destroyed is not None:
        how = " (ancient destroyed)" if bool(result.ancient_destroyed[0]) else " (time limit)"
    outcome = f"{TEAM_NAMES[winner]} ({(radiant.name, dire.name)[winner]}) wins" \
        if winner in (0, 1) else "draw"
    secs = length / 2.0
    print(f"result: {outcome}{how} after {length} ticks ({int(secs // 60)}:{int(secs % 60):02d} "
          f"game time)")
    nw = result.net_worth[0]
    print(f"net worth: radiant {nw[0]:,.0f}, dire {nw[1]:,.0f}")
    totals = _team_totals(result, config.team_size)
    print("kills {k[0]:.0f}/{k[1]:.0f}  deaths {d[0]:.0f}/{d[1]:.0f}  last hits {l[0]:.0f}/{l[1]:.0f}"
          "  denies {n[0]:.0f}/{n[1]:.0f}  (radiant/dire)".format(
              k=totals["kills"], d=totals["deaths"], l=totals["last_hits"], n=totals["denies"]))
    size = os.path.getsize(path)
    h, w = recorder.shape[:2]
    print(f"wrote {path}: {recorder.count} frames {w}x{h} at {args.fps} fps, "
          f"{size / 1e6:.1f} MB (match, rendering and GIF {t1 - t0:.1f} s)")
    return 0


def _tag(name: str) -> str:
    """A player's name as part of a TensorBoard tag: letters, digits and _ . @ - only."""
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name).strip("_") or "player"


def _check_out_path(text: str) -> Path:
    """Fail before the match, not after it, when the GIF cannot be written there."""
    out = Path(text).expanduser()
    if out.is_dir():
        raise UsageError(f"--out {text} is a folder; give a file path such as {out / 'match.gif'}")
    _writable_folder("--out", text, out.parent)
    return out


def _check_log_dir(text: str) -> Path:
    """Fail before the match, not after it, when TensorBoard cannot log to LOGDIR."""
    logdir = Path(text).expanduser()
    if logdir.exists() and not logdir.is_dir():
        raise UsageError(f"--tensorboard {text} is a file; give a folder for TensorBoard logs")
    _writable_folder("--tensorboard", text, logdir)
    return logdir


def _writable_folder(option: str, text: str, folder: Path) -> None:
    """Create `folder` if missing; a UsageError naming `option` when that fails or it is
    not writable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} {text}: cannot create the folder {folder}: "
                         f"{e.strerror or e}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {text}: the folder {folder} is not writable")


def _team_totals(result: Any, team_size: int) -> dict[str, tuple[float, float]]:
    names = list(result.event_names)
    ev = result.event_totals[0]
    out = {}
    for name in ("kills", "deaths", "last_hits", "denies"):
        col = ev[:, names.index(name)]
        out[name] = (float(col[:team_size].sum()), float(col[team_size:].sum()))
    return out


# ---- parser ------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    """A duration in seconds: finite and > 0 (-1 would wait forever, nan never compares)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a finite positive number of seconds, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _version() -> str:
    # from the installed metadata, not `arena.__version__`: an editable install made before
    # arena/__init__.py existed maps `arena` as a namespace package that skips that file
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("arena-selfplay")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Arena: league self-play for team games (PettingZoo games, scripted "
                    "bots, LSTM PPO agents).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "train", help="train agents by self-play (LSTM PPO in PyTorch Lightning)",
        description="Train by self-play. CONFIG is a YAML file (default configs/default.yaml: "
                    "the built-in MOBA on CPU); key=value arguments override its entries, e.g. "
                    "`arena train configs/moba_3v3.yaml ppo.lr=1e-4 trainer.devices=2`. Runs go "
                    "to runs/<run.name>/ (config, checkpoints, TensorBoard events).")
    p.add_argument("config", nargs="?", default=None, metavar="CONFIG",
                   help="YAML config file (default configs/default.yaml)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="dotted overrides, e.g. ppo.lr=1e-4 trainer.max_updates=100")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--check", action="store_true",
                   help="check the config, game, networks, trainer settings and run directory, "
                        "print a summary and exit; nothing is written")
    _add_allow_game(p, "the config.yaml of a run given to --resume")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "tournament", help="rank checkpoints, league snapshots and bots in a round robin",
        description="Round robin between players, every pair playing N games with sides "
                    "swapped (half each): run directories (all their league snapshots, else "
                    "their checkpoints), checkpoint files, RUN_DIR@ID league snapshots, "
                    "snapshot files and scripted bots. Prints a ranked table (openskill "
                    "rating mu, conservative mu - 3 sigma, win rate; with trained players the "
                    "bots are fixed anchors: random 10, passive 20, lasthitter 30, pusher 40), "
                    "writes tournament.json and tournament.csv, and logs the table and each "
                    "run's rating against its training update to TensorBoard (DIR/tb). "
                    "Deterministic for a seed, whatever the number of workers.")
    p.add_argument("specs", nargs="*", metavar="SPEC",
                   help="run directory, checkpoint, RUN_DIR@ID, snapshot file or bot name")
    p.add_argument("--bots", nargs="*", default=None, metavar="BOT",
                   help="scripted bots to add (--bots alone: all four)")
    p.add_argument("--games", type=_positive_int, default=10, metavar="N",
                   help="games per pair, half with each side (default 10)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="W",
                   help="worker processes (default 1)")
    p.add_argument("--seed", type=_int, default=0, help="seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where tournament.json/.csv and tb/ go (default: the first run "
                        "directory, else the current directory)")
    p.add_argument("--team-size", type=_positive_int, default=None, metavar="N",
                   help="heroes per team (default: the first trained player's, else 3)")
    p.add_argument("--max-ticks", type=_positive_int, default=None, metavar="N",
                   help="time limit in ticks (default: the first trained player's game's)")
    _add_allow_game(p, "the players' run configs and checkpoints")
    p.set_defaults(func=_cmd_tournament)

    p = sub.add_parser("games", help="list the registered games, their teams and spaces",
                       description="List the registered games: name, description, teams "
                                   "with their agents, observation and action spaces "
                                   "(default settings).")
    p.set_defaults(func=_cmd_games)

    p = sub.add_parser(
        "watch", help="play one MOBA match (bots or checkpoints) and write it as a GIF",
        description="Play one match of the built-in MOBA, A as radiant against B as dire, and "
                    "write it as an animated GIF. A and B are scripted bots (random, passive, "
                    "lasthitter, pusher: weakest first), training checkpoints, run directories "
                    "(their newest checkpoint), RUN_DIR@ID (a league snapshot) or snapshot "
                    "files; the game's settings are the first trained player's unless "
                    "given.")
    p.add_argument("radiant", metavar="A", help="radiant: a bot name, checkpoint, run "
                                                "directory, RUN_DIR@ID or snapshot file")
    p.add_argument("dire", metavar="B", help="dire: same kinds as A")
    p.add_argument("--tensorboard", metavar="LOGDIR", default=None,
                   help="also log the match as an animation to TensorBoard in LOGDIR (a "
                        f"preview at most {_TB_MAX_WIDTH} px wide and {_TB_MAX_FRAMES} frames: "
                        "longer matches keep every 2nd, 4th, ... frame)")
    p.add_argument("--out", required=True, metavar="PATH", help="GIF to write (e.g. match.gif)")
    p.add_argument("--seed", type=_int, default=0, help="game and bot seed (default 0)")
    p.add_argument("--team-size", type=_positive_int, default=None, metavar="N",
                   help="heroes per team, 1-5 (default: a trained player's, else 3)")
    p.add_argument("--max-ticks", type=_positive_int, default=None, metavar="N",
                   help="time limit in ticks, 2 ticks per game second (default: the game's, 1500)")
    p.add_argument("--view", choices=("full", "radiant", "dire"), default="full",
                   help="full view, or one team's view with its fog of war (default full)")
    p.add_argument("--fps", type=_positive_int, default=10, help="GIF frames per second (default 10)")
    p.add_argument("--every", type=_positive_int, default=2, metavar="K",
                   help="keep every K-th tick as a frame (default 2: one frame per game second)")
    p.add_argument("--scale", type=_positive_int, default=6, metavar="PX",
                   help="pixels per map unit, 1-32 (default 6: a 384x384 GIF)")
    _add_allow_game(p, "the players' run configs and checkpoints")
    p.set_defaults(func=_cmd_watch)

    p = sub.add_parser(
        "actor", help="collect rollouts for a running learner (on this or another machine)",
        description="Join a running learner as an actor: take its config and weights, step "
                    "games with CPU copies of its policies and push rollouts until it stops. "
                    "The learner must serve actors (actors.listen=true or actors.num_workers "
                    "> 0) on an address this machine reaches (actors.host, actors.port); it "
                    "prints the address to connect to.")
    p.add_argument("--connect", required=True, metavar="tcp://HOST:PORT",
                   help="the learner's control address")
    p.add_argument("--keys", default=None, metavar="DIR",
                   help="CURVE keys (server.key and client.key_secret from `arena keys`); "
                        "needed when the learner has actors.curve_keys set")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--timeout", type=_positive_seconds, default=30.0, metavar="S",
                   help="seconds to wait for the learner's answer, > 0 (default 30)")
    _add_allow_game(p, "the learner's config")
    p.set_defaults(func=_cmd_actor)

    p = sub.add_parser(
        "keys", help="make CurveZMQ keys that authenticate actors and encrypt the transport",
        description="Write a learner key pair (server.key, server.key_secret), an actor key "
                    "pair (client.key, client.key_secret) and DIR/authorized/ with the actor's "
                    "public key. Train with actors.curve_keys=DIR; give actors server.key and "
                    "client.key_secret. Refuses to overwrite existing keys.")
    p.add_argument("directory", metavar="DIR", help="where to write the keys")
    p.set_defaults(func=_cmd_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        # `arena train CONFIG --check key=value`: overrides may follow an option too
        if extra and getattr(args, "command", None) == "train" and \
                all("=" in x and not x.startswith("-") for x in extra):
            args.overrides = [*args.overrides, *extra]
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help, --version, or a usage error argparse has reported
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    where = f"{PROG} {args.command}"
    if args.command == "watch":
        if args.fps > 100:
            print(f"{where}: error: --fps must be at most 100, got {args.fps}", file=sys.stderr)
            return 2
        if args.scale > 32:
            print(f"{where}: error: --scale must be at most 32, got {args.scale}", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except UsageError as e:
        print(f"{where}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{where}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one clear line, no traceback
        message = str(e) or type(e).__name__
        print(f"{where}: error: {message}", file=sys.stderr)
        if os.environ.get("ARENA_DEBUG"):
            raise
        return 1
