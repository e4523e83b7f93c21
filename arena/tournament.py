"""`arena tournament`: a round robin between checkpoints, league snapshots and scripted bots.

Participants (`entrants_from`): a run directory contributes all its league snapshots
(runs/NAME/league/hero), or its checkpoints when it has none; checkpoint files,
RUN_DIR@ID, snapshot files and bot names contribute themselves (arena/players.py).

Every pair plays `games` games, A radiant in half of them and dire in the other half, in one
batched core (`play_match`). Pairs run in `workers` processes (spawn context, one torch
thread each; a worker returns plain lists); each pair's games and players are seeded from
(seed, the two names), so results do not depend on the scheduling, the number of workers
or the other participants. The ratings (league/ratings.py) are computed afterwards in a
fixed order — game k of every pair (in pair order), then game k+1 — so they too depend
only on the results. Bots are fixed anchors when trained players take part; in a
tournament of bots alone every rating is earned.

Results: the ranked table (rank, name, mu, mu - 3 sigma, win rate, games), written as
tournament.json and tournament.csv (atomically), and TensorBoard: the table as text and,
for a run's snapshots or checkpoints, the conservative rating against the training update
(`tournament/rating`, step = update; with several runs one curve per run,
`tournament/rating/<run>`).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing as mp
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from games.files import atomic_write_bytes
from games.moba.bots import BOT_NAMES
from league.ratings import BOT_ANCHORS, RatingTable

MAX_CACHED = 32  # learners kept per process


@dataclass(frozen=True)
class Entrant:
    spec: str  # what load_player takes
    name: str  # how it is shown (unique in a tournament)
    update: int | None = None  # training update of a snapshot or checkpoint
    run: str | None = None  # the run directory it comes from

    @property
    def is_bot(self) -> bool:
        return self.spec in BOT_NAMES


def entrants_from(specs: list[str], bots: list[str] = ()) -> list[Entrant]:
    """Participants from player specs and bot names (see the module docstring). Raises
    CheckpointError for a spec that names nothing usable, ValueError for an unknown bot."""
    from arena.checkpoints import CheckpointError
    from arena.players import checkpoint_update, describe, parse_spec
    from league.pool import OpponentPool, PoolError

    out: list[Entrant] = []
    for spec in specs:
        s = parse_spec(spec)
        if s.kind == "run":
            run = s.path
            pool_dir = run / "league" / "hero"
            snapshots = []
            if (pool_dir / "pool.json").is_file():
                try:
                    snapshots = OpponentPool.open(pool_dir).snapshots
                except PoolError as exc:
                    raise CheckpointError(f"{spec}: {exc}") from None
            if snapshots:
                for snap in snapshots:
                    sub = f"{run}@{snap.id}"
                    out.append(Entrant(sub, parse_spec(sub).default_name, snap.update, str(run)))
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
    for bot in bots:
        if bot not in BOT_NAMES:
            raise ValueError(f"unknown bot {bot!r}; valid bots: {', '.join(BOT_NAMES)}")
        out.append(Entrant(bot, bot))
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
    if spec in BOT_NAMES:
        return spec
    path = Path(spec).expanduser()
    if path.exists():
        return str(path.resolve())
    head, _, tail = spec.rpartition("@")
    return f"{Path(head).expanduser().resolve()}@{tail}"


def pair_seed(seed: int, name_a: str, name_b: str) -> int:
    """The seed of one pair's games: from the tournament seed and the two names only."""
    words = [int(seed) % 2**32, int(seed) // 2**32 % 2**32,
             zlib.crc32(name_a.encode()), zlib.crc32(name_b.encode())]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


# ---- playing -----------------------------------------------------------------------------
_WORKER_CACHE: dict = {}


def _init_worker(allow: tuple[str, ...] = ()) -> None:
    """A worker plays with one torch thread and trusts the games its parent trusts."""
    import torch

    from arena.trust import allow_games

    torch.set_num_threads(1)
    allow_games(allow)


def _play_pair(job: dict, cache: dict | None = None) -> dict:
    """One pair's games; takes and returns plain data (runs in a worker process)."""
    import time

    from arena.players import load_player, play_match

    cache = _WORKER_CACHE if cache is None else cache
    if len(cache) > MAX_CACHED:
        cache.clear()
    t0 = time.perf_counter()
    try:
        a = load_player(job["a"], job["options"], seed=job["seed"] + 1, cache=cache)
        b = load_player(job["b"], job["options"], seed=job["seed"] + 2, cache=cache)
        scores = play_match(a, b, games=job["games"], seed=job["seed"],
                            game_options=job["options"])
    except Exception as exc:  # noqa: BLE001 - reported by the parent, naming the pair
        return {"i": job["i"], "j": job["j"], "error": f"{type(exc).__name__}: {exc}"}
    return {"i": job["i"], "j": job["j"], "scores": [float(x) for x in scores],
            "seconds": time.perf_counter() - t0}


def run_tournament(entrants: list[Entrant], *, games: int, seed: int, workers: int = 1,
                   game_options: dict | None = None,
                   progress: Callable[[], Any] | None = None) -> tuple[RatingTable, dict]:
    """Play the round robin; returns the rating table and {"A vs B": A's scores per game}
    (pairs in the order of `entrants`). `progress()` is called after each pair."""
    import torch

    from arena.trust import allowed

    if len(entrants) < 2:
        raise ValueError(f"a tournament needs at least 2 participants, got {len(entrants)}")
    names = [e.name for e in entrants]
    if len(set(names)) != len(names):
        raise ValueError(f"participant names must be unique, got {names}")
    if isinstance(games, bool) or not isinstance(games, int) or games < 1:
        raise ValueError(f"games must be a positive int, got {games!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    options = dict(game_options or {})
    jobs = [{"i": i, "j": j, "a": entrants[i].spec, "b": entrants[j].spec, "games": games,
             "seed": pair_seed(seed, entrants[i].name, entrants[j].name), "options": options}
            for i in range(len(entrants)) for j in range(i + 1, len(entrants))]
    results: dict[tuple[int, int], list[float]] = {}

    def take(res: dict) -> None:
        if "error" in res:
            a, b = entrants[res["i"]].name, entrants[res["j"]].name
            raise RuntimeError(f"{a} vs {b}: {res['error']}")
        results[(res["i"], res["j"])] = res["scores"]
        if progress is not None:
            progress()

    if workers == 1 or len(jobs) == 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in the workers: the same numbers either way
        try:
            cache: dict = {}
            for job in jobs:
                take(_play_pair(job, cache))
        finally:
            torch.set_num_threads(threads)
    else:
        ctx = mp.get_context("spawn")
        with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker,
                      initargs=(allowed(),)) as pool:
            for res in pool.imap_unordered(_play_pair, jobs, chunksize=1):
                take(res)
    table = rate(entrants, results, games)
    pairs = {f"{entrants[i].name} vs {entrants[j].name}": results[(i, j)]
             for (i, j) in sorted(results)}
    return table, pairs


def rate(entrants: list[Entrant], results: dict[tuple[int, int], list[float]],
         games: int) -> RatingTable:
    """Ratings from the pair results in a fixed order: game k of every pair, then k + 1."""
    anchors = {e.name: BOT_ANCHORS[e.spec] for e in entrants if e.is_bot and e.spec in BOT_ANCHORS}
    if len(anchors) == len(entrants):
        anchors = {}  # bots alone: every rating is earned
    table = RatingTable(anchors=anchors)
    for e in entrants:
        table.add(e.name)
    order = sorted(results)
    for k in range(games):
        for i, j in order:
            if k < len(results[(i, j)]):
                table.update(entrants[i].name, entrants[j].name, results[(i, j)][k])
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


def write_results(out_dir: Path, table: RatingTable, entrants: list[Entrant], pairs: dict,
                  meta: dict) -> tuple[Path, Path]:
    """tournament.json (settings, table, every pair's scores, the rating state) and
    tournament.csv (the table), each written atomically."""
    out_dir = Path(out_dir)
    rows = result_rows(table, entrants)
    pair_list = []
    for key, scores in pairs.items():
        a, _, b = key.partition(" vs ")
        pair_list.append({"a": a, "b": b, "scores": list(scores),
                          "score_a": float(np.mean(scores)) if len(scores) else None})
    doc = {"meta": meta, "table": rows, "pairs": pair_list, "ratings": table.state_dict()}
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
