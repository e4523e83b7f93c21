"""The `arena` command line.

    arena train [CONFIG] [key=value ...] train by self-play (default: configs/default.yaml)
    arena train --resume runs/NAME       continue a run from its last checkpoint
    arena games                          list the registered games, their teams and spaces
    arena watch BOT_A BOT_B --out m.gif  play one MOBA match between scripted bots, as a GIF

`main(argv)` returns the exit status instead of exiting, so tests and other programs can
call it: 0 success, 1 a failure while running, 2 a usage error (bad option, unknown bot,
invalid game setting). Errors are one line on stderr, never a traceback; progress goes to
stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import os
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
    from arena.train import main_train

    try:
        run_dir = main_train(args.config, list(args.overrides), args.resume)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    print(f"run finished: {run_dir}")
    return 0


# ---- arena tournament -------------------------------------------------------------------
def _cmd_tournament(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    from rich.table import Table

    from arena.checkpoints import CheckpointError
    from arena.tournament import entrants_from, log_to_tensorboard, run_tournament, write_results

    options: dict[str, Any] = {"team_size": args.team_size}
    if args.max_ticks is not None:
        options["max_ticks"] = args.max_ticks
    from games.moba.bots import BOT_NAMES

    bots = [] if args.bots is None else (list(args.bots) or list(BOT_NAMES))
    try:
        entrants = entrants_from(list(args.specs), bots)
        if len(entrants) < 2:
            raise ValueError(f"a tournament needs at least 2 participants, got {len(entrants)}")
        from arena.players import load_player

        for e in entrants:  # fail before playing: every participant must load
            load_player(e.spec, options)
    except (CheckpointError, ValueError) as e:
        raise UsageError(str(e)) from None
    if args.out is not None:
        out = Path(args.out)
    else:
        runs = [Path(s) for s in args.specs if Path(s).is_dir()]
        out = runs[0] if runs else Path(".")
    pairs = len(entrants) * (len(entrants) - 1) // 2
    console = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task(f"{pairs} pairs x {args.games} games", total=pairs)
        table, results = run_tournament(entrants, games=args.games, seed=args.seed,
                                        workers=args.workers, game_options=options,
                                        progress=lambda: bar.advance(task))
    rows = table.table()
    shown = Table(title=f"tournament: {len(entrants)} players, {args.games} games per pair")
    for col in ("rank", "name", "mu", "mu - 3 sigma", "win rate", "games"):
        shown.add_column(col, justify="left" if col == "name" else "right")
    for r in rows:
        shown.add_row(str(r["rank"]), r["name"] + (" (anchor)" if r["anchor"] else ""),
                      f"{r['mu']:.1f}", f"{r['conservative']:.1f}",
                      "-" if r["win_rate"] is None else f"{r['win_rate']:.2f}", str(r["games"]))
    Console().print(shown)
    meta = {"games_per_pair": args.games, "seed": args.seed, "game_options": options,
            "participants": [e.spec for e in entrants]}
    json_path, csv_path = write_results(out, table, entrants, results, meta)
    log_to_tensorboard(out / "tb", table, entrants)
    print(f"wrote {json_path} and {csv_path}; TensorBoard: {out / 'tb'}")
    return 0


# ---- arena games ------------------------------------------------------------------------
def _cmd_games(args: argparse.Namespace) -> int:
    import games

    failed = 0
    specs = games.list_games()
    for i, spec in enumerate(specs):
        if i:
            print()
        print(f"{spec.name}: {spec.description}")
        try:
            env = games.make(spec.name)
        except Exception as e:  # a broken or missing game must not hide the others
            print(f"  (cannot build it: {type(e).__name__}: {e})")
            print(f"{PROG} games: error: game {spec.name!r} cannot be built: {e}",
                  file=sys.stderr)
            failed += 1
            continue
        try:
            _describe_env(env)
        finally:
            close = getattr(env, "close", None)
            if callable(close):
                close()
    return 1 if failed else 0


def _describe_env(env: Any) -> None:
    agents = list(getattr(env, "possible_agents", []))
    teams: dict[str, list[str]] = dict(getattr(env, "teams", {}) or {"(all)": agents})
    print("  teams:")
    for team, members in teams.items():
        print(f"    {team}: {', '.join(members)}")
    # one line per distinct space; name the teams only when they differ
    for label, get in (("observation space", env.observation_space),
                       ("action space", env.action_space)):
        per_team = {team: [str(get(a)) for a in members] for team, members in teams.items()}
        distinct = {s for ss in per_team.values() for s in ss}
        if len(distinct) == 1:
            print(f"  {label}: {distinct.pop()}")
        else:
            for team, ss in per_team.items():
                for agent, s in zip(teams[team], ss):
                    print(f"  {label} ({agent}): {s}")


# ---- arena watch ------------------------------------------------------------------------
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
                f"{100 * frac:3.0f}%  {rate:,.0f} ticks/s  {len(self.recorder.frames)} frames")

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
    from games.moba.render import FrameRecorder, write_gif

    overrides: dict[str, Any] = {"team_size": args.team_size}
    if args.max_ticks is not None:
        overrides["max_ticks"] = args.max_ticks
    try:
        config = make_config(**overrides)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    out = _check_out_path(args.out)
    try:
        radiant = load_player(args.radiant, overrides, seed=args.seed)
        dire = load_player(args.dire, overrides, seed=args.seed + 1)
    except CheckpointError as e:
        name = str(e).split(":")[0]
        if not Path(name).exists() and "@" not in name and "/" not in name and \
                not name.endswith(".ckpt"):
            from games.moba.bots import BOT_NAMES

            raise UsageError(f"unknown bot {name!r}; valid bots: {', '.join(BOT_NAMES)} "
                             f"(or a checkpoint, a run directory, RUN_DIR@SNAPSHOT)") from None
        raise UsageError(str(e)) from None
    view = None if args.view == "full" else args.view
    recorder = FrameRecorder(game=0, team=view, every=args.every, scale=args.scale)
    progress = _Progress(config.max_ticks, sys.stderr, recorder)

    def on_step(core: Any) -> None:
        recorder(core)
        progress(core)

    print(f"{args.radiant} (radiant) vs {args.dire} (dire): {config.team_size}v{config.team_size}, "
          f"seed {args.seed}, up to {config.max_ticks} ticks, {args.view} view")
    t0 = time.perf_counter()
    result = play(radiant, dire, games=1, seed=args.seed, game_options=overrides,
                  on_step=on_step)
    progress.close()
    t1 = time.perf_counter()
    # the last frame shows the end of the game, even when `every` skipped it
    if progress.core is not None and (recorder.calls - 1) % recorder.every != 0:
        recorder.frames.append(_render_last(progress.core, view, args.scale))
    try:
        path = write_gif(recorder.frames, out, fps=args.fps)
    except OSError as e:
        raise RuntimeError(f"could not write {out}: {e}") from e
    t2 = time.perf_counter()
    if args.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        from arena.media import log_gif

        with SummaryWriter(args.tensorboard) as writer:
            log_gif(writer, f"match/{_tag(args.radiant)}_vs_{_tag(args.dire)}", recorder.frames,
                    step=0, fps=args.fps)

    winner = int(result.winners[0])
    length = int(result.lengths[0])
    how = ""
    if result.ancient_destroyed is not None:
        how = " (ancient destroyed)" if bool(result.ancient_destroyed[0]) else " (time limit)"
    outcome = f"{TEAM_NAMES[winner]} ({(args.radiant, args.dire)[winner]}) wins" \
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
    h, w = recorder.frames[0].shape[:2]
    print(f"wrote {path}: {len(recorder.frames)} frames {w}x{h} at {args.fps} fps, "
          f"{size / 1e6:.1f} MB (match + rendering {t1 - t0:.1f} s, GIF {t2 - t1:.1f} s)")
    return 0


def _tag(spec: str) -> str:
    return Path(spec.partition("@")[0]).name + (f"@{spec.partition('@')[2]}" if "@" in spec else "")


def _check_out_path(text: str) -> Path:
    """Fail before the match, not after it, when the GIF cannot be written there."""
    out = Path(text).expanduser()
    if out.is_dir():
        raise UsageError(f"--out {text} is a folder; give a file path such as {out / 'match.gif'}")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {text}: cannot create the folder {parent}: {e.strerror or e}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {text}: the folder {parent} is not writable")
    return out


def _render_last(core: Any, view: str | None, scale: int) -> Any:
    from games.moba.render import render_frame

    return render_frame(core, 0, view, scale)


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
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "tournament", help="rank checkpoints, league snapshots and bots in a round robin",
        description="Round robin with sides swapped between the given players: run "
                    "directories (their league snapshots, else their checkpoints), checkpoint "
                    "files, RUN_DIR@SNAPSHOT, and scripted bots (--bots). Prints a ranked "
                    "table (openskill rating, mu - 3 sigma, win rate; bots are fixed anchors), "
                    "writes tournament.json and tournament.csv, and logs to TensorBoard.")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="run directory, checkpoint, RUN@ID")
    p.add_argument("--bots", nargs="*", default=None, metavar="BOT",
                   help="scripted bots to add (no names: all four)")
    p.add_argument("--games", type=_positive_int, default=10, help="games per pair (default 10)")
    p.add_argument("--workers", type=_positive_int, default=1, help="processes (default 1)")
    p.add_argument("--seed", type=_int, default=0, help="seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where tournament.json/.csv go (default: the first run directory)")
    p.add_argument("--team-size", type=_positive_int, default=3, metavar="N")
    p.add_argument("--max-ticks", type=_positive_int, default=None, metavar="N")
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
                    "(their newest checkpoint) or RUN_DIR@SNAPSHOT (a league snapshot).")
    p.add_argument("radiant", metavar="A", help="radiant: a bot name, checkpoint, run "
                                                "directory or RUN_DIR@SNAPSHOT")
    p.add_argument("dire", metavar="B", help="dire: same kinds as A")
    p.add_argument("--tensorboard", metavar="LOGDIR", default=None,
                   help="also log the match as an animation to TensorBoard in LOGDIR")
    p.add_argument("--out", required=True, metavar="PATH", help="GIF to write (e.g. match.gif)")
    p.add_argument("--seed", type=_int, default=0, help="game and bot seed (default 0)")
    p.add_argument("--team-size", type=_positive_int, default=3, metavar="N",
                   help="heroes per team, 1-5 (default 3)")
    p.add_argument("--max-ticks", type=_positive_int, default=None, metavar="N",
                   help="time limit in ticks, 2 ticks per game second (default: the game's, 1500)")
    p.add_argument("--view", choices=("full", "radiant", "dire"), default="full",
                   help="full view, or one team's view with its fog of war (default full)")
    p.add_argument("--fps", type=_positive_int, default=10, help="GIF frames per second (default 10)")
    p.add_argument("--every", type=_positive_int, default=2, metavar="K",
                   help="keep every K-th tick as a frame (default 2: one frame per game second)")
    p.add_argument("--scale", type=_positive_int, default=6, metavar="PX",
                   help="pixels per map unit, 1-32 (default 6: a 384x384 GIF)")
    p.set_defaults(func=_cmd_watch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
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
