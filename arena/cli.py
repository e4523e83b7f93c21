"""The `arena` command line.

    arena train [CONFIG] [key=value ...] train by self-play (default: configs/default.yaml)
    arena train --resume runs/NAME       continue a run from its last checkpoint
    arena train --check [CONFIG] [k=v]   check a config without training or writing
    arena games                          list the registered games, their teams and spaces
    arena tournament SPEC... [--bots]    round robin of checkpoints, snapshots and bots: ranked
                                         table, tournament.json/.csv, TensorBoard
    arena watch A B [...] --out m.gif    play one match of any game (bots or trained players) as a GIF
    arena actor --connect tcp://H:P      collect rollouts for a running learner (actors.listen)
    arena keys DIR                       make CurveZMQ keys for learner and actors

A player SPEC is a bot name, a checkpoint file, a run directory, RUN_DIR@ID (a league
snapshot) or a snapshot file (arena/play/players.py).

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROG = "arena"


class UsageError(Exception):
    """Bad input from the user: reported on one line, exit status 2."""


# ---- arena train ------------------------------------------------------------------------
def _rank_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return rank_zero_only.rank == 0


def _cmd_train(args: argparse.Namespace) -> int:
    from arena.config import ConfigError
    from arena.train import TrainingStopped, check_only, main_train

    _allow_games(args)
    try:
        if args.check:
            print(check_only(args.config, list(args.overrides), args.resume))
            return 0
        _choose_gloo_interface()
        run_dir = main_train(args.config, list(args.overrides), args.resume)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    except TrainingStopped as e:
        if _rank_zero():  # every rank stops alike; one line is enough
            print(f"{PROG} train: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    if _rank_zero():  # under DDP every rank returns here; one line is enough
        print(f"run finished: {run_dir} ({_how_it_ended(run_dir)})")
    return 0


def _choose_gloo_interface() -> None:
    """Multi-machine launches: an interface gloo can be reached on (arena/scale/distributed.py)."""
    from arena.scale.distributed import choose_gloo_interface

    note = choose_gloo_interface()
    if note is not None:
        print(f"{PROG} train: {note}", file=sys.stderr, flush=True)


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
    from arena.scale.actors import ActorError, run_actor
    from arena.scale.transport import KeysError

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
    from arena.scale.transport import KeysError, create_keys

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


# ---- arena tournament / arena watch: the game of a match ---------------------------------
def _match_game(specs: Sequence[str], args: argparse.Namespace) -> Any:
    """The game the players meet on: the first trained player's (else --game, default the
    MOBA), with --set options and --team-size/--max-ticks (shorthands for --set team_size=N
    and max_ticks=N) on top; built once here so an option the game refuses is a usage error
    before anything is loaded or played."""
    import yaml

    from arena.checkpoints import CheckpointError
    from arena.play.players import match_game

    options: dict[str, Any] = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set max_cycles=50")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            options[key.strip()] = value
    if args.team_size is not None:
        options["team_size"] = args.team_size
    if args.max_ticks is not None:
        options["max_ticks"] = args.max_ticks
    try:
        game = match_game(list(specs), args.game, options)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    try:
        game.vec(1).close()
    except Exception as e:  # noqa: BLE001 - an option the game refuses
        message = (str(e) or type(e).__name__).splitlines()[0]
        raise UsageError(f"game {game.name!r} with options {dict(game.options)}: "
                         f"{message}") from None
    return game


def _cmd_tournament(args: argparse.Namespace) -> int:
    from arena.checkpoints import CheckpointError
    from arena.play.tournament import tournament

    _allow_games(args)
    game = _match_game(list(args.specs), args)
    try:
        return tournament(list(args.specs), args.bots, game=game, games=args.games,
                          seed=args.seed, workers=args.workers, out=args.out)
    except (CheckpointError, ValueError) as e:
        raise UsageError(str(e)) from None


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
def _cmd_watch(args: argparse.Namespace) -> int:
    from arena.checkpoints import CheckpointError
    from arena.play.watch import watch
    from games.render import RenderError

    _allow_games(args)
    game = _match_game(list(args.players), args)
    out = _check_out_path(args.out)
    if args.tensorboard:
        _check_log_dir(args.tensorboard)
    view = None if args.view == "full" else args.view
    try:
        return watch(list(args.players), game, out, seed=args.seed, view=view, every=args.every,
                     fps=args.fps, scale=args.scale,
                     tensorboard=Path(args.tensorboard) if args.tensorboard else None)
    except (CheckpointError, RenderError, ValueError) as e:
        raise UsageError(str(e)) from None


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


TB_PREVIEW = (384, 200)  # arena.play.watch.TB_MAX_WIDTH, TB_MAX_FRAMES (help text only)


def _add_game_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--game", default=None, metavar="NAME",
                   help="the game, when no trained player names it (default moba; `arena "
                        "games` lists them, or a pettingzoo: spec)")
    p.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                   help="a game option on top of the trained player's (YAML value; "
                        "repeatable), e.g. --set max_cycles=50")
    p.add_argument("--team-size", type=_positive_int, default=None, metavar="N",
                   help="--set team_size=N: the MOBA's heroes per team, 1-5 (default: a "
                        "trained player's, else 3)")
    p.add_argument("--max-ticks", type=_positive_int, default=None, metavar="N",
                   help="--set max_ticks=N: the MOBA's time limit in ticks, 2 per game second "
                        "(default: the game's)")


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
        "tournament", help="rank checkpoints, league snapshots and bots of any game",
        description="Round robin between players of one game: run directories (all their "
                    "league snapshots, else their checkpoints), checkpoint files, RUN_DIR@ID "
                    "league snapshots, snapshot files and the game's scripted bots. In a "
                    "two-team game every pair plays N games, each side playing each team "
                    "equally (both ways in asymmetric games); with more teams every group of "
                    "one player per team does. Prints a ranked table (openskill rating mu, "
                    "conservative mu - 3 sigma, win rate; with trained players the game's "
                    "bots are fixed anchors, random 10 in every game), writes "
                    "tournament.json and tournament.csv, and logs the table and each run's "
                    "rating against its training update to TensorBoard (DIR/tb). "
                    "Deterministic for a seed, whatever the number of workers.")
    p.add_argument("specs", nargs="*", metavar="SPEC",
                   help="run directory, checkpoint, RUN_DIR@ID, snapshot file or bot name")
    p.add_argument("--bots", nargs="*", default=None, metavar="BOT",
                   help="the game's scripted bots to add (--bots alone: all of them)")
    p.add_argument("--games", type=_positive_int, default=10, metavar="N",
                   help="games per pair or table, seats rotated (default 10)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="W",
                   help="worker processes (default 1)")
    p.add_argument("--seed", type=_int, default=0, help="seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where tournament.json/.csv and tb/ go (default: the first run "
                        "directory, else the current directory)")
    _add_game_options(p)
    _add_allow_game(p, "the players' run configs and checkpoints")
    p.set_defaults(func=_cmd_tournament)

    p = sub.add_parser("games", help="list the registered games, their teams and spaces",
                       description="List the registered games: name, description, teams "
                                   "with their agents, observation and action spaces "
                                   "(default settings).")
    p.set_defaults(func=_cmd_games)

    p = sub.add_parser(
        "watch", help="play one match of any game (bots or trained players) as a GIF",
        description="Play one match and write it as an animated GIF, frame by frame. Players "
                    "are the game's scripted bots, training checkpoints, run directories "
                    "(their newest checkpoint), RUN_DIR@ID (a league snapshot) or snapshot "
                    "files: one per team in team order, or two (the first plays the first "
                    "team, the second every other). The game is the first trained player's "
                    "unless given (--game, --set); the MOBA draws itself with team views, "
                    "any other game through its own render_mode='rgb_array'.")
    p.add_argument("players", nargs="+", metavar="PLAYER",
                   help="a bot name, checkpoint, run directory, RUN_DIR@ID or snapshot file")
    p.add_argument("--tensorboard", metavar="LOGDIR", default=None,
                   help="also log the match as an animation to TensorBoard in LOGDIR (a "
                        f"preview at most {TB_PREVIEW[0]} px wide and {TB_PREVIEW[1]} frames: "
                        "longer matches keep every 2nd, 4th, ... frame)")
    p.add_argument("--out", required=True, metavar="PATH", help="GIF to write (e.g. match.gif)")
    p.add_argument("--seed", type=_int, default=0, help="game and player seed (default 0)")
    p.add_argument("--view", default="full", metavar="VIEW",
                   help="full, or a team whose view to draw where the game has team views "
                        "(MOBA: radiant or dire, with their fog of war; default full)")
    p.add_argument("--fps", type=_positive_int, default=10, help="GIF frames per second (default 10)")
    p.add_argument("--every", type=_positive_int, default=2, metavar="K",
                   help="keep every K-th step as a frame (default 2: one frame per MOBA "
                        "game second)")
    p.add_argument("--scale", type=_positive_int, default=None, metavar="PX",
                   help="MOBA: pixels per map unit, 1-32 (default 6: a 384x384 GIF)")
    _add_game_options(p)
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
        if args.scale is not None and args.scale > 32:
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
        if not isinstance(e, (ValueError, RuntimeError, OSError)):
            # not one of the errors Arena words itself (a KeyError from a game's own code):
            # its type and where to see more
            message = f"{type(e).__name__}: {message} (ARENA_DEBUG=1 shows the traceback)"
        print(f"{where}: error: {message}", file=sys.stderr)
        if os.environ.get("ARENA_DEBUG"):
            raise
        return 1
