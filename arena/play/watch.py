"""Matches to look at, for any game: `arena watch` (one match as a GIF, players from specs)
and `MatchWatcher` (during training, every `watch.every` updates, the latest policy against a
league opponent as an animation in TensorBoard).

Both play through the one runner (`play_games`, arena/play/runner.py) on a one-game batch
made without autoreset, so the last frame shows the end, and draw with the game's renderer
(games/render.py: the MOBA's own, with team views; any other game's `render_mode=
"rgb_array"`; a game that cannot render is refused before the match).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import torch

from arena.play.media import log_gif
from arena.play.players import MatchGame
from arena.play.runner import StackedRunner, play_games
from games.gif import ClipPreview, Recorder
from games.render import Renderer, make_rendering_vec, renderer

if TYPE_CHECKING:
    from arena.learn.learner import PPOLearner

TB_MAX_WIDTH = 384  # `watch --tensorboard` logs a bounded preview, never every full-size frame
TB_MAX_FRAMES = 200


def seats_for(players: int, teams: list[str]) -> np.ndarray:
    """(1, T) seats of one game: one player per team, or two players — the first on the
    first team, the second on every other."""
    T = len(teams)
    if players == T:
        return np.arange(T)[None, :]
    if players == 2 and T > 2:
        seats = np.ones((1, T), np.int64)
        seats[0, 0] = 0
        return seats
    raise ValueError(f"this game has {T} teams ({', '.join(teams)}): give one player per "
                     f"team, or two (the first plays {teams[0]}, the second every other team)")


def step_limit(vec: Any, options: dict[str, Any]) -> int | None:
    """How many steps a game lasts at most, where the game says (MOBA max_ticks, PettingZoo
    max_cycles), for the progress line."""
    config = getattr(vec, "config", None)
    if config is not None and hasattr(config, "max_ticks"):
        return int(config.max_ticks)
    for key in ("max_cycles", "max_steps", "max_ticks"):
        if isinstance(options.get(key), int):
            return int(options[key])
    return None


class Progress:
    """Progress of a match on a stream: a live bar on a terminal, else a line per 10% (or
    per 100 steps when the game's length is unknown)."""

    def __init__(self, total: int | None, stream: TextIO, recorder: Recorder) -> None:
        self.total = None if total is None else max(1, int(total))
        self.stream, self.recorder = stream, recorder
        self.live = bool(getattr(stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.next_mark = 0.1 if self.total else 100
        self.steps = 0
        self.calls = 0  # the first call comes after the reset, every other after a step
        self.printed = -1

    def __call__(self, vec: Any, step: Any) -> None:
        self.steps = self.calls
        self.calls += 1
        now = time.perf_counter()
        if self.live:
            if now - self.last_draw >= 0.2:
                self.last_draw = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
            return
        at = self.steps / self.total if self.total else self.steps
        if at >= self.next_mark:
            while self.next_mark <= at:
                self.next_mark += 0.1 if self.total else 100
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()
            self.printed = self.steps

    def _line(self, now: float) -> str:
        rate = self.steps / max(now - self.start, 1e-9)
        tail = f"{rate:,.0f} steps/s  {self.recorder.count} frames"
        if not self.total:
            return f"{self.steps} steps  {tail}"
        frac = min(1.0, self.steps / self.total)
        filled = int(round(frac * 24))
        return (f"[{'#' * filled}{'.' * (24 - filled)}] {self.steps}/{self.total} steps "
                f"{100 * frac:3.0f}%  {tail}")

    def close(self) -> None:
        """The final state: ends the live bar, else prints a last line unless shown."""
        if self.live:
            self.stream.write("\r" + self._line(time.perf_counter()) + "\n")
        elif self.steps != self.printed:
            self.stream.write(self._line(time.perf_counter()) + "\n")
        self.stream.flush()


def tag(name: str) -> str:
    """A player's name as part of a TensorBoard tag: letters, digits and _ . @ - only."""
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name).strip("_") or "player"


def watch(specs: list[str], game: MatchGame, out: Path, *, seed: int = 0,
          view: str | None = None, every: int = 1, fps: int = 10, scale: int | None = None,
          tensorboard: Path | None = None, stream: TextIO | None = None) -> int:
    """`arena watch`, after the command line is parsed: load the players, play one game of
    `game` with the frames streamed into the GIF `out`, print the result. Errors in the
    players, the seats or the renderer raise before anything is played."""
    from arena.play.players import check_fits, load_player

    stream = sys.stderr if stream is None else stream
    render = renderer(game.name, view, scale)
    players = [load_player(spec, game) for spec in specs]
    for p in players:
        check_fits(p, game)
    # built after the players' checks, which build and close games of their own: closing
    # a game can tear down what the others draw with (pygame, quit by one game's close)
    vec = make_rendering_vec(game.name, dict(game.options), render, autoreset=False)
    try:
        teams = list(vec.team_names)
        seats = seats_for(len(specs), teams)
        sides = [p.side(vec, seed=seed + 1 + m) for m, p in enumerate(players)]
        vec.reset(seed=seed)
        render.frame(vec)  # a game that cannot draw is refused before anything is shown
        limit = step_limit(vec, dict(game.options))
        who = " vs ".join(
            f"{p.name} ({', '.join(t for t, s in zip(teams, seats[0]) if s == m)})"
            for m, p in enumerate(players))
        print(f"{who}: {game.name}, seed {seed}"
              + (f", up to {limit} steps" if limit else "")
              + (f", {view} view" if view else ""))
        preview = ClipPreview(TB_MAX_WIDTH, TB_MAX_FRAMES) if tensorboard else None
        t0 = time.perf_counter()
        try:
            # frames stream into the GIF as they are drawn: memory stays about one frame
            with Recorder(lambda v: render.frame(v), every=every, out=out, fps=fps,
                          preview=preview,
                          exact_colours=getattr(render, "exact_colours", ())) as recorder:
                progress = Progress(limit, stream, recorder)

                def on_step(v: Any, step: Any) -> None:
                    recorder(v)
                    progress(v, step)

                result = play_games(vec, sides, seats, seed=seed, on_step=on_step)
                progress.close()
                path = recorder.finish()  # the last frame shows the end
        except OSError as e:
            raise RuntimeError(f"could not write {out}: {e}") from e
        t1 = time.perf_counter()
        if preview is not None:
            from torch.utils.tensorboard import SummaryWriter

            step = next((p.update for p in players if p.update is not None), 0)
            with SummaryWriter(str(tensorboard)) as writer:
                log_gif(writer, "match/" + "_vs_".join(tag(p.name) for p in players),
                        preview.frames, step=step, fps=preview.fps(fps),
                        exact_colours=getattr(render, "exact_colours", ()))
        print_result(result, vec, teams, seats[0], [p.name for p in players])
    finally:
        vec.close()
    size = os.path.getsize(path)
    h, w = recorder.shape[:2]
    print(f"wrote {path}: {recorder.count} frames {w}x{h} at {fps} fps, {size / 1e6:.1f} MB "
          f"(match, rendering and GIF {t1 - t0:.1f} s)")
    return 0


def print_result(result: Any, vec: Any, teams: list[str], seats: np.ndarray,
                 names: list[str]) -> None:
    """Who won, how long it took, each team's return and event totals."""
    winner, length = int(result.winners[0]), int(result.lengths[0])
    if winner >= 0:
        outcome = f"{teams[winner]} ({names[int(seats[winner])]}) wins"
    else:
        outcome = "draw"
    print(f"result: {outcome} after {length} steps")
    print("returns: " + ", ".join(f"{t} {r:,.2f}" for t, r in zip(teams, result.returns[0])))
    if vec.event_names:
        # counters summed over the match; events the game reports as current values
        # (`level_events`, e.g. the MOBA's net worth) as they were at the end
        levels = set(getattr(vec, "level_events", ()))
        totals = np.array([result.final_events[0, :, e] if n in levels else result.events[0, :, e]
                           for e, n in enumerate(vec.event_names)]).T
        per_team = np.zeros((len(teams), len(vec.event_names)))
        np.add.at(per_team, vec.slot_team, totals)
        shown = [(n, per_team[:, e]) for e, n in enumerate(vec.event_names)
                 if per_team[:, e].any()]
        if shown:
            print(f"events ({'/'.join(teams)}): " + "  ".join(
                f"{n} {'/'.join(f'{x:,.0f}' for x in v)}" for n, v in shown))


class MatchWatcher:
    """Called by the learner every `watch.every` updates (rank 0); logs one match GIF of the
    latest policy (first team) against a league snapshot (half the time, where the league
    has one) or itself, on any game its renderer draws."""

    def __init__(self, game: str, options: dict[str, Any], every: int, view: str | None,
                 frame_every: int, fps: int, max_ticks: int | None, seed: int) -> None:
        self.every, self.frame_every, self.fps, self.seed = every, frame_every, fps, seed
        self.render: Renderer = renderer(game, view)
        options = dict(options)
        if max_ticks is not None:  # a game with a `max_ticks` option (the MOBA) plays shorter
            options["max_ticks"] = max_ticks
        self.game, self.options = game, options
        self.rng = np.random.default_rng(seed)

    def check(self) -> None:
        """Build the game as it will be rendered (a RenderError if it cannot)."""
        vec = make_rendering_vec(self.game, self.options, self.render, autoreset=False)
        try:
            vec.reset(seed=0)
            self.render.frame(vec)
        finally:
            vec.close()

    @torch.inference_mode()
    def __call__(self, learner: PPOLearner) -> dict[str, float]:
        # a game built for each match: one kept between matches could be broken by games
        # closed meanwhile (pygame, which some games quit when one of them is closed)
        vec = make_rendering_vec(self.game, self.options, self.render, autoreset=False)
        try:
            return self._play(learner, vec)
        finally:
            vec.close()

    def _play(self, learner: PPOLearner, vec: Any) -> dict[str, float]:
        opponent, name = learner.policy_for, "latest"
        manager = getattr(learner.collector, "opponents", None)
        pools = [p for p in learner.pools.values() if len(p)]
        if manager is not None and len(pools) == len(learner.pools) and pools \
                and self.rng.random() < 0.5:
            snap = pools[0].sample_snapshot(self.rng)
            role_of = {g.key: g.role.name for g in learner.groups}
            opponent = lambda key: manager.models(snap.id, role_of[key])[key]  # noqa: E731
            name = f"snapshot_{snap.id:04d}"
        seed = self.seed + learner.updates
        # both teams on one side: the latest (team 0) and its opponent (the others), frozen
        # for the match, act in one forward pass per tick
        owner = np.ones((1, len(vec.team_names)), np.int64)
        owner[0, 0] = 0
        both = StackedRunner(vec, learner.groups, [learner.policy_for, opponent], owner,
                             seed=seed, device=learner.device)
        seats = np.zeros((1, len(vec.team_names)), np.int64)
        recorder = Recorder(lambda v: self.render.frame(v), every=self.frame_every)
        was_training = learner.training
        learner.eval()
        try:
            result = play_games(vec, [both], seats, seed=seed,
                                on_step=lambda v, step: recorder(v))
            recorder.finish()
        finally:
            learner.train(was_training)
        if learner.logger is not None:
            log_gif(learner.logger.experiment, f"match/latest_vs_{name}", recorder.frames,
                    step=learner.updates, fps=self.fps,
                    exact_colours=getattr(self.render, "exact_colours", ()))
        return {"watch/latest_score": float(result.scores(seats, 0)[0])}
