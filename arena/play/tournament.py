"""`arena tournament`: checkpoints, league snapshots and scripted bots of any game, ranked.

Participants (`entrants_from`): a run directory contributes all its league snapshots
(runs/NAME/league/<role>, every role of snapshot ID at once), or its checkpoints when it has
none; checkpoint files, RUN_DIR@ID, snapshot files and bot names contribute themselves
(arena/play/players.py). The game is the first trained participant's (`match_game`), or
`--game` for bots alone.

Tables. In a game of two teams every pair of participants plays `games` games; in a game
of T > 2 teams every group of T participants does (one team each). Seats rotate: in game k
participant m of a table plays team (m + k) mod T, so each plays every team equally, and
in asymmetric games (simple_tag's predators and prey) both ways. Every table's games are
one batch through the policy runner (`play_games`). Tables run in `workers` processes
(spawn context, one torch thread each; a worker returns plain lists); each table's games
and players are seeded from (seed, the participants' names), so results depend neither on
the scheduling, the number of workers nor the other participants. Ratings (openskill,
league/ratings.py; all places of a game of several teams at once) are computed afterwards
in a fixed order — game k of every table (in table order), then game k+1. The game's bots
are fixed anchors (its registry entry: `random` 10 for every game) when trained players
take part; in a tournament of bots alone every rating is earned.

Results: the ranked table (rank, name, mu, mu - 3 sigma, win rate, games) printed, written
as tournament.json and tournament.csv (atomically), and TensorBoard: the table as text and,
for a run's snapshots or checkpoints, the conservative rating against the training update
(`tournament/rating`, step = update; with several runs one curve per run,
`tournament/rating/<run>`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing as mp
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arena.checkpoints import CheckpointError
from arena.play.players import MatchGame, parse_spec
from games.files import atomic_write_bytes
from league.ratings import RatingTable

MAX_CACHED = 32  # players kept per process

Results = dict[tuple[int, ...], list[list[float]]]  # table -> per game, each member's score


@dataclass(frozen=True)
class Entrant:
    spec: str  # what load_player takes
    name: str  # how it is shown (unique in a tournament)
    update: int | None = None  # training update of a snapshot or checkpoint
    run: str | None = None  # the run directory it comes from

    @property
    def is_bot(self) -> bool:
        return parse_spec(self.spec).kind == "bot"


def entrants_from(specs: list[str], bots: list[str] = (),
                  game: MatchGame | None = None) -> list[Entrant]:
    """Participants from player specs and bot names (see the module docstring). Raises
    CheckpointError for a spec that names nothing usable or a bot `game` does not have."""
    from arena.play.players import checkpoint_update, describe, snapshot_ids
    from games.registry import parse_bot
    from league.pool import PoolError

    out: list[Entrant] = []
    for spec in [*specs, *bots]:
        s = parse_spec(spec)
        if s.kind == "bot":
            if game is not None:
                try:
                    parse_bot(game.name, spec)
                except ValueError as exc:
                    raise CheckpointError(str(exc)) from None
            out.append(Entrant(spec, spec))
        elif s.kind == "run":
            run = s.path
            try:
                snapshots = snapshot_ids(run)
            except PoolError as exc:
                raise CheckpointError(f"{spec}: {exc}") from None
            if snapshots:
                for sid, update in snapshots:
                    sub = f"{run}@{sid}"
                    out.append(Entrant(sub, parse_spec(sub).default_name, update, str(run)))
                continue
            folder = run / "checkpoints"
            ckpts = sorted(folder.glob("update-*.ckpt")) or sorted(folder.glob("last.ckpt"))
            if not ckpts:
                raise CheckpointError(f"{spec}: no league snapshots or checkpoints in this run "
                                      f"directory")
            for ckpt in ckpts:
                sub = parse_spec(str(ckpt))
                out.append(Entrant(str(ckpt), sub.default_name, checkpoint_update(ckpt), str(run)))
        else:
            name, update, run_dir = describe(s)
            out.append(Entrant(spec, name, update, None if run_dir is None else str(run_dir)))
    return _unique(out)


def _unique(entrants: list[Entrant]) -> list[Entrant]:
    """Drop repeats of the same player; number apart different players of the same name."""
    seen: set[str] = set()
    names: set[str] = set()
    out = []
    for e in entrants:
        key = _identity(e.spec)
        if key in seen:
            continue
        seen.add(key)
        name, k = e.name, 2
        while name in names:
            name, k = f"{e.name} ({k})", k + 1
        names.add(name)
        out.append(e if name == e.name else Entrant(e.spec, name, e.update, e.run))
    return out


def _identity(spec: str) -> str:
    """The same player, however its path is written."""
    if parse_spec(spec).kind == "bot":
        return spec
    path = Path(spec).expanduser()
    if path.exists():
        return str(path.resolve())
    head, _, tail = spec.rpartition("@")
    return f"{Path(head).expanduser().resolve()}@{tail}"


def table_seed(seed: int, names: list[str]) -> int:
    """The seed of one table's games: from the tournament seed and the names only."""
    words = [int(seed) % 2**32, int(seed) // 2**32 % 2**32,
             *(zlib.crc32(name.encode()) for name in names)]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def tables(n: int, teams: int) -> list[tuple[int, ...]]:
    """Who meets whom: every pair (two teams), every group of `teams` participants (more)."""
    if n < teams:
        raise ValueError(f"this game has {teams} teams: a tournament needs at least {teams} "
                         f"participants (one per team), got {n}; add more, e.g. bots")
    return list(itertools.combinations(range(n), teams))


# ---- playing -----------------------------------------------------------------------------
_WORKER_CACHE: dict = {}


def _init_worker(allow: tuple[str, ...] = (), games: tuple = ()) -> None:
    """A worker plays with one torch thread, knows the games its parent registered and
    trusts the games its parent trusts."""
    import torch

    from arena.trust import allow_games
    from games.registry import restore

    torch.set_num_threads(1)
    restore(games)
    allow_games(allow)


def _play_table(job: dict, cache: dict | None = None) -> dict:
    """One table's games; takes and returns plain data (runs in a worker process)."""
    from arena.play.players import load_player
    from arena.play.runner import play_games

    cache = _WORKER_CACHE if cache is None else cache
    if len(cache) > MAX_CACHED:
        cache.clear()
    t0 = time.perf_counter()
    game = MatchGame(job["game"]["name"], job["game"]["options"])
    try:
        vec = game.vec(job["games"])
        try:
            T, G = len(vec.team_names), job["games"]
            sides = [load_player(spec, game, cache=cache).side(vec, seed=job["seed"] + 1 + m)
                     for m, spec in enumerate(job["specs"])]
            seats = (np.arange(T)[None, :] - np.arange(G)[:, None]) % T  # team t: member t-k
            result = play_games(vec, sides, seats, seed=job["seed"])
        finally:
            vec.close()
        scores = [[float(x) for x in result.scores(seats, m)] for m in range(len(sides))]
    except Exception as exc:  # noqa: BLE001 - reported by the parent, naming the table
        return {"table": job["table"], "error": f"{type(exc).__name__}: {exc}"}
    return {"table": job["table"], "scores": [list(g) for g in zip(*scores)],
            "seconds": time.perf_counter() - t0}


def run_tournament(entrants: list[Entrant], game: MatchGame, *, games: int, seed: int,
                   workers: int = 1, progress: Callable[[], Any] | None = None
                   ) -> tuple[RatingTable, Results]:
    """Play every table; returns the rating table and {table (entrant indices): per game,
    each member's score}. `progress()` is called after each table."""
    import torch

    from arena.trust import allowed

    names = [e.name for e in entrants]
    if len(set(names)) != len(names):
        raise ValueError(f"participant names must be unique, got {names}")
    if isinstance(games, bool) or not isinstance(games, int) or games < 1:
        raise ValueError(f"games must be a positive int, got {games!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    probe = game.vec(1)
    teams = len(probe.team_names)
    probe.close()
    if len(entrants) < 2:
        raise ValueError(f"a tournament needs at least 2 participants, got {len(entrants)}")
    jobs = [{"table": list(t), "specs": [entrants[i].spec for i in t], "games": games,
             "seed": table_seed(seed, [entrants[i].name for i in t]), "game": game.as_dict()}
            for t in tables(len(entrants), teams)]
    results: Results = {}

    def take(res: dict) -> None:
        if "error" in res:
            who = " vs ".join(entrants[i].name for i in res["table"])
            raise RuntimeError(f"{who}: {res['error']}")
        results[tuple(res["table"])] = res["scores"]
        if progress is not None:
            progress()

    from games.registry import registered_by_object, registrations

    if workers > 1 and registered_by_object(game.name):
        print(f"tournament: game {game.name!r} was registered with a factory object, which "
              f"exists only in this process: playing with 1 worker (register it by "
              f"'module:attr' path to use more)", file=sys.stderr, flush=True)
        workers = 1
    if workers == 1 or len(jobs) == 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in the workers: the same numbers either way
        try:
            cache: dict = {}
            for job in jobs:
                take(_play_table(job, cache))
        finally:
            torch.set_num_threads(threads)
    else:
        ctx = mp.get_context("spawn")
        with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker,
                      initargs=(allowed(), tuple(registrations()))) as pool:
            for res in pool.imap_unordered(_play_table, jobs, chunksize=1):
                take(res)
    results = dict(sorted(results.items()))
    return rate(entrants, results, games, game.name), results


def rate(entrants: list[Entrant], results: Results, games: int, game: str) -> RatingTable:
    """Ratings from the table results in a fixed order: game k of every table, then k + 1.
    The game's bots are anchors unless every participant is a bot."""
    from games.registry import bot_anchors

    fixed = bot_anchors(game)
    anchors = {e.name: fixed[e.spec] for e in entrants if e.is_bot and e.spec in fixed}
    if all(e.is_bot for e in entrants):
        anchors = {}  # bots alone: every rating is earned
    table = RatingTable(anchors=anchors)
    for e in entrants:
        table.add(e.name)
    for k in range(games):
        for members, per_game in results.items():
            if k < len(per_game):
                table.update_game([entrants[i].name for i in members], per_game[k])
    return table


# ---- results -----------------------------------------------------------------------------
def result_rows(table: RatingTable, entrants: list[Entrant]) -> list[dict[str, Any]]:
    by_name = {e.name: e for e in entrants}
    rows = table.table()
    for row in rows:
        e = by_name.get(row["name"])
        row["update"] = None if e is None else e.update
        row["run"] = None if e is None else e.run
        row["spec"] = None if e is None else e.spec
    return rows


def write_results(out_dir: Path, table: RatingTable, entrants: list[Entrant], results: Results,
                  meta: dict) -> tuple[Path, Path]:
    """tournament.json (settings, table, every table's scores per game, the rating state)
    and tournament.csv (the ranked table), each written atomically."""
    out_dir = Path(out_dir)
    rows = result_rows(table, entrants)
    matches = []
    for members, per_game in results.items():
        players = [entrants[i].name for i in members]
        scores = {p: [g[m] for g in per_game] for m, p in enumerate(players)}
        matches.append({"players": players, "scores": scores,
                        "mean": {p: float(np.mean(s)) if s else None for p, s in scores.items()}})
    doc = {"meta": meta, "table": rows, "matches": matches, "ratings": table.state_dict()}
    json_path = atomic_write_bytes(out_dir / "tournament.json",
                                   (json.dumps(doc, indent=1) + "\n").encode())
    buf = io.StringIO()
    fields = ["rank", "name", "mu", "sigma", "conservative", "win_rate", "games", "update",
              "anchor", "run", "spec"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = atomic_write_bytes(out_dir / "tournament.csv", buf.getvalue().encode())
    return json_path, csv_path


def markdown_table(table: RatingTable) -> str:
    lines = ["| rank | name | mu | mu - 3 sigma | win rate | games |", "|---|---|---|---|---|---|"]
    for r in table.table():
        wr = "-" if r["win_rate"] is None else f"{r['win_rate']:.2f}"
        name = r["name"] + (" (anchor)" if r["anchor"] else "")
        lines.append(f"| {r['rank']} | {name} | {r['mu']:.1f} | {r['conservative']:.1f} "
                     f"| {wr} | {r['games']} |")
    return "\n".join(lines)


def print_table(table: RatingTable, entrants: list[Entrant], title: str) -> None:
    """The ranked table on stdout (rich; a fixed width when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    updates = {e.name: e.update for e in entrants}
    shown = Table(title=title)
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


def log_to_tensorboard(logdir: Path, table: RatingTable, entrants: list[Entrant]) -> None:
    """The table as text ("tournament/table") and each run's rating curve against the
    training update ("tournament/rating" and "tournament/mu"; "/<run name>" appended when
    several runs take part)."""
    from torch.utils.tensorboard import SummaryWriter

    trained = [e for e in entrants if e.update is not None]
    runs: dict[str, list[Entrant]] = {}
    for e in trained:
        run = Path(e.run).name if e.run else e.name.replace("@", "/").split("/")[0]
        runs.setdefault(run, []).append(e)
    step = max((e.update for e in trained), default=0)
    with SummaryWriter(str(logdir)) as writer:
        writer.add_text("tournament/table", markdown_table(table), global_step=step)
        for run, members in runs.items():
            suffix = "" if len(runs) == 1 else f"/{run}"
            for e in sorted(members, key=lambda e: (e.update, e.name)):
                mu, _ = table.rating(e.name)
                writer.add_scalar(f"tournament/rating{suffix}", table.conservative(e.name),
                                  e.update)
                writer.add_scalar(f"tournament/mu{suffix}", mu, e.update)


def tournament(specs: list[str], bots: list[str] | None, *, game: MatchGame, games: int,
               seed: int, workers: int, out: Path | None) -> int:
    """`arena tournament`, after the command line is parsed: check every participant, play
    with a progress bar, print the table, write the results and TensorBoard. Raises
    CheckpointError/ValueError for anything wrong before play."""
    import os

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from arena.play.players import check_fits, load_player
    from games.registry import bot_names

    probe = game.vec(1)  # the game must build with these options before anything is played
    teams = list(probe.team_names)
    probe.close()
    bots = None if bots is None else (list(bots) or list(bot_names(game.name)))
    entrants = entrants_from(list(specs), bots or [], game)
    if not entrants:
        raise ValueError("no participants: give run directories, checkpoints, RUN_DIR@ID "
                         "snapshots or bot names, and/or --bots")
    if len(entrants) < 2:
        raise ValueError(f"a tournament needs at least 2 participants, got 1 "
                         f"({entrants[0].name}); add more, e.g. --bots")
    groups = tables(len(entrants), len(teams))
    cache: dict = {}
    for e in entrants:  # fail before playing: every participant must load and fit the game
        check_fits(load_player(e.spec, game, cache=cache), game)
    del cache
    out = Path(out).expanduser() if out is not None else \
        next((Path(e.run) for e in entrants if e.run), Path("."))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: cannot create the folder: {e.strerror or e}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: the folder is not writable")
    n = len(entrants)
    what = "pairs" if len(teams) == 2 else f"tables of {len(teams)}"
    print(f"tournament on {game.name} ({' vs '.join(teams)}): {n} players, {len(groups)} "
          f"{what} x {games} games, seed {seed}, {workers} worker(s)", file=sys.stderr,
          flush=True)
    t0 = time.perf_counter()
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(what.split()[0], total=len(groups))
        table, results = run_tournament(entrants, game, games=games, seed=seed,
                                        workers=workers, progress=lambda: bar.advance(task))
    seconds = time.perf_counter() - t0
    print_table(table, entrants, f"tournament: {n} players, {games} games per "
                                 f"{'pair' if len(teams) == 2 else 'table'}")
    meta = {"game": game.name, "game_options": dict(game.options), "teams": teams,
            "games_per_table": games, "seed": seed, "workers": workers,
            "seconds": round(seconds, 3),
            "participants": [{"name": e.name, "spec": e.spec, "update": e.update, "run": e.run}
                             for e in entrants]}
    json_path, csv_path = write_results(out, table, entrants, results, meta)
    log_to_tensorboard(out / "tb", table, entrants)
    print(f"wrote {json_path} and {csv_path}; TensorBoard: {out / 'tb'} "
          f"({seconds:.1f} s for {len(groups) * games} games)")
    return 0
