"""`arena tournament`: a round robin between checkpoints, league snapshots and scripted bots.

Every pair plays `games` games with sides swapped (half each). Pairs run in `workers`
processes; each pair's games are seeded from (seed, pair), so the results — and the
ratings, computed afterwards in a fixed order — do not depend on the scheduling. The
ranked table is printed, saved as JSON and CSV, and logged to TensorBoard (a text table,
and for one run's snapshots the conservative rating against the training update).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from games.files import atomic_write_bytes
from games.moba.bots import BOT_NAMES
from league.ratings import BOT_ANCHORS, RatingTable


@dataclass(frozen=True)
class Entrant:
    spec: str  # what load_player takes
    name: str  # how it is shown
    update: int | None = None  # training update of a snapshot or checkpoint


def entrants_from(specs: list[str], bots: list[str]) -> list[Entrant]:
    """Run directories contribute their league snapshots (else their checkpoints)."""
    from arena.checkpoints import CheckpointError, read_checkpoint
    from league.pool import OpponentPool

    out: list[Entrant] = []
    for spec in specs:
        path = Path(spec.partition("@")[0])
        if path.is_dir() and "@" not in spec:
            pool_dir = path / "league" / "hero"
            if (pool_dir / "pool.json").is_file():
                for snap in OpponentPool.open(pool_dir).snapshots:
                    out.append(Entrant(f"{path}@{snap.id}", f"{path.name}@{snap.id}", snap.update))
                continue
            ckpts = sorted((path / "checkpoints").glob("update-*.ckpt"))
            if not ckpts:
                raise CheckpointError(f"{spec}: no league snapshots or checkpoints in this run")
            for ckpt in ckpts:
                update = int(read_checkpoint(ckpt)["arena"]["updates"])
                out.append(Entrant(str(ckpt), f"{path.name}/{ckpt.stem}", update))
        elif path.exists() or spec in BOT_NAMES:
            out.append(Entrant(spec, spec))
        else:
            raise CheckpointError(f"{spec}: no such checkpoint or run directory")
    for bot in bots:
        if bot not in BOT_NAMES:
            raise ValueError(f"unknown bot {bot!r}; valid bots: {', '.join(BOT_NAMES)}")
        out.append(Entrant(bot, bot))
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise ValueError(f"a participant appears twice: {names}")
    return out


def _play_pair(job: tuple) -> tuple[int, int, list[float]]:
    """Worker: one pair's games; returns plain data."""
    import torch

    from arena.players import load_player, play_match

    i, j, spec_a, spec_b, games, seed, options = job
    torch.set_num_threads(1)
    a = load_player(spec_a, options, seed=seed)
    b = load_player(spec_b, options, seed=seed + 1)
    scores = play_match(a, b, games=games, seed=seed, game_options=options)
    return i, j, scores.tolist()


def run_tournament(entrants: list[Entrant], *, games: int, seed: int, workers: int,
                   game_options: dict, progress=None) -> tuple[RatingTable, dict]:
    if len(entrants) < 2:
        raise ValueError(f"a tournament needs at least 2 participants, got {len(entrants)}")
    jobs = []
    for i in range(len(entrants)):
        for j in range(i + 1, len(entrants)):
            pair_seed = int(np.random.SeedSequence([seed, i, j]).generate_state(1)[0])
            jobs.append((i, j, entrants[i].spec, entrants[j].spec, games, pair_seed,
                         game_options))
    results: dict[tuple[int, int], list[float]] = {}
    if workers <= 1:
        for job in jobs:
            i, j, scores = _play_pair(job)
            results[(i, j)] = scores
            if progress:
                progress()
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            for i, j, scores in pool.imap_unordered(_play_pair, jobs):
                results[(i, j)] = scores
                if progress:
                    progress()
    # bots anchor the scale of trained players; among bots alone every rating is earned
    anchors = {e.name: BOT_ANCHORS[e.spec] for e in entrants if e.spec in BOT_ANCHORS}
    if len(anchors) == len(entrants):
        anchors = {}
    table = RatingTable(anchors=anchors)
    for e in entrants:
        table.add(e.name)
    # ratings in a fixed order: game by game, interleaving the pairs
    order = sorted(results)
    for k in range(games):
        for i, j in order:
            table.update(entrants[i].name, entrants[j].name, results[(i, j)][k])
    return table, {f"{entrants[i].name} vs {entrants[j].name}": s for (i, j), s in results.items()}


def write_results(out_dir: Path, table: RatingTable, entrants: list[Entrant], pairs: dict,
                  meta: dict) -> tuple[Path, Path]:
    rows = table.table()
    updates = {e.name: e.update for e in entrants}
    for row in rows:
        row["update"] = updates.get(row["name"])
    doc = {"meta": meta, "table": rows, "pairs": pairs}
    json_path = atomic_write_bytes(out_dir / "tournament.json", json.dumps(doc, indent=1).encode())
    buf = io.StringIO()
    fields = ["rank", "name", "mu", "sigma", "conservative", "win_rate", "games", "update", "anchor"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = atomic_write_bytes(out_dir / "tournament.csv", buf.getvalue().encode())
    return json_path, csv_path


def log_to_tensorboard(logdir: Path, table: RatingTable, entrants: list[Entrant]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    rows = table.table()
    lines = ["| rank | name | mu | mu - 3 sigma | win rate | games |", "|---|---|---|---|---|---|"]
    for r in rows:
        wr = "" if r["win_rate"] is None else f"{r['win_rate']:.2f}"
        lines.append(f"| {r['rank']} | {r['name']} | {r['mu']:.1f} | {r['conservative']:.1f} "
                     f"| {wr} | {r['games']} |")
    with SummaryWriter(str(logdir)) as writer:
        writer.add_text("tournament/table", "\n".join(lines))
        for e in sorted((e for e in entrants if e.update is not None), key=lambda e: e.update):
            run = e.name.replace("@", "/").split("/")[0]  # one curve per training run
            writer.add_scalar(f"tournament/rating/{run}", table.conservative(e.name), e.update)
            writer.add_scalar(f"tournament/mu/{run}", table.rating(e.name)[0], e.update)
