"""Learning curve of any config: the latest policy's score against every bot of its game
(`random`, which every game has, and the bots the game registers), against the game's
held-out panel, and optionally a role's return against random play, over wall-clock time.

    python benchmarks/learning.py [CONFIG] [--minutes 60] [--every 20] [--games 32]
                                  [--role-return ROLE ...] [--baseline-games 512]
                                  [--target BOT:RATE:MINUTES ...]
                                  [--target return:ROLE:RATIO:MINUTES ...] [key=value ...]

Trains CONFIG (default configs/default.yaml, plus overrides) in a fresh run directory under
runs/bench-learning-*/, evaluates every `--every` updates (the policy playing every team in
turn), and prints one row per evaluation: training minutes (evaluation time excluded),
updates, agent-steps, and the score (win 1, draw 0.5) against each bot of the game that is
not in its panel (those the league trains against are starred in the legend), against
each member of the game's held-out panel (games/registry.py `panel`: bot specs no training
config may name in league.bots; members that do not fit the game's teams are left out),
as the headline column `panel`, the worst of the panel scores, and as `past` the worst
score against the fixed panel of the run's own past snapshots (eval.panel_every/size). The script refuses a
config whose league.bots names a panel member: that member would not be held out.

`--role-return ROLE` (repeatable; ROLE a role name, or a team name) also plays, at every
evaluation, `--games` games with the latest policy on ROLE's slots and `random` on every
other slot, and prints ROLE's mean episode return (the game's own reward, per agent) and its
ratio to a baseline: `random` on every slot, measured once before training (fixed seed,
`--baseline-games` games, not on the clock). For simple_tag's predators ("adversary", +10
per catch) the ratio is the catch ratio. A `return:ROLE:...` target adds ROLE to them.

At the end it prints when each target was first met. Targets on the 2-core dev machines
(issue notes):

    default.yaml       random:0.95:10  pusher:0.60:60  panel:0.80:45 (every panel member)
    connect_four.yaml  random:0.95:10  connect4:0.60:30
    magent_battle.yaml random:0.90:20
    simple_tag.yaml    return:adversary:3.0:20  (predators catch 3x as often as random ones)
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from arena.config import CONFIG_DIR, load_config
from arena.play.evaluate import BotEvaluator
from arena.play.runner import BotSide, PolicyRunner, play_games
from games.registry import RANDOM_BOT, bot_names, make_side_bots, panel, panel_conflicts
from games.vector import VecGame, make_vec

DEFAULT_TARGETS = {
    "default.yaml": ("random:0.95:10", "pusher:0.60:60", "panel:0.80:45"),
    "connect_four.yaml": ("random:0.95:10", "connect4:0.60:30"),
    "magent_battle.yaml": ("random:0.90:20",),
    "simple_tag.yaml": ("return:adversary:3.0:20",),
}
RETURN = "return"  # the target form return:ROLE:RATIO:MINUTES; rows key it "return:ROLE"
PANEL = "panel"  # the column (and target key) of the worst score against the held-out panel
PAST = "past"  # the worst score against the fixed panel of the run's own past snapshots


def held_out_panel(cfg, config_path: str) -> list[str]:
    """The members of the game's panel this run may call held out, that fit its teams.
    SystemExit when the config's league.bots names a member (the run trains against it)."""
    game = cfg.game.name
    trained = panel_conflicts(game, cfg.league.bots)
    if trained:
        raise SystemExit(f"{config_path}: league.bots {list(cfg.league.bots)} names the "
                         f"held-out panel member(s) {trained} of game {game!r}: the run trains "
                         f"against them, so they are not held out. Remove them from "
                         f"league.bots (the panel: {list(panel(game))}).")
    probe = make_vec(game, 1, **cfg.game.options)
    members = []
    try:
        for spec in panel(game):
            try:
                make_side_bots(game, spec, probe)
            except ValueError as exc:  # a mixture for another team size
                print(f"panel: leaving out {spec}: {exc}", flush=True)
                continue
            members.append(spec)
    finally:
        probe.close()
    return members


def role_slots(vec: VecGame, name: str) -> np.ndarray:
    """The slots of the role called `name`, else of the team called `name`."""
    roles = [r.name for r in vec.roles]
    if name in roles:
        slots = np.array(vec.role(name).slots, np.int64)
        teams = np.unique(vec.slot_team[slots])
        if len(np.flatnonzero(np.isin(vec.slot_team, teams))) != len(slots):
            raise ValueError(f"--role-return {name!r}: the role shares its teams with other "
                             f"roles; measure one of its teams {vec.team_names} instead")
        return slots
    if name in vec.team_names:
        return np.flatnonzero(vec.slot_team == vec.team_names.index(name))
    raise ValueError(f"--role-return {name!r}: the game has roles {roles} and teams "
                     f"{vec.team_names}")


@torch.no_grad()
def team_returns(vec: VecGame, first, second, slots: np.ndarray, seed: int) -> np.ndarray:
    """Mean episode return per agent of `slots` (the game's own reward), one value per game
    of `vec`: `first` (a PolicyRunner or BotSide) plays the teams of `slots`, `second` every
    other team (arena.play.runner.play_games). Each game counts its first episode."""
    teams = np.unique(vec.slot_team[slots])
    seats = np.ones((vec.num_games, len(vec.team_names)), np.int64)
    seats[:, teams] = 0
    result = play_games(vec, [first, second], seats, seed=seed)
    return result.returns[:, teams].sum(1) / len(slots)


def random_side(vec: VecGame, game: str, seed: int) -> BotSide:
    return BotSide(vec, make_side_bots(game, RANDOM_BOT, vec, seed))


class RoleReturns:
    """ROLE's mean episode return with the latest policy on ROLE and random elsewhere, and
    its ratio to random everywhere (measured once, at construction)."""

    def __init__(self, cfg, roles: list[str], games: int, baseline_games: int,
                 seed: int) -> None:
        self.game, self.roles, self.seed = cfg.game.name, list(roles), seed
        self.vec = make_vec(cfg.game.name, games, **cfg.game.options)
        self.slots = {r: role_slots(self.vec, r) for r in self.roles}
        base = make_vec(cfg.game.name, baseline_games, **cfg.game.options)
        try:
            self.baseline = {
                r: float(team_returns(base, random_side(base, self.game, seed),
                                      random_side(base, self.game, seed + 100),
                                      self.slots[r], seed=seed).mean())
                for r in self.roles}
        finally:
            base.close()
        for r in self.roles:
            print(f"baseline: {r} return {self.baseline[r]:.3f} per agent per episode, random "
                  f"on every slot ({baseline_games} games)", flush=True)

    def __call__(self, learner) -> dict[str, tuple[float, float]]:
        """role -> (policy's mean return, ratio to the baseline)."""
        was_training = learner.training
        learner.eval()
        out = {}
        try:
            seed = self.seed + 1000 * learner.updates
            for i, r in enumerate(self.roles):
                groups = [g for g in learner.groups if set(g.slots) & set(self.slots[r])]
                me = PolicyRunner(self.vec, groups, learner.policy_for, seed=seed + i,
                                  device=learner.device)
                ret = float(team_returns(self.vec, me, random_side(self.vec, self.game, seed),
                                         self.slots[r], seed=seed + 7919 * i).mean())
                base = self.baseline[r]
                out[r] = (ret, ret / base if base > 0 else float("nan"))
        finally:
            learner.train(was_training)
        return out

    def close(self) -> None:
        self.vec.close()


class TimedEvaluator(BotEvaluator):
    """A BotEvaluator that also measures role returns, prints a row and keeps its own time
    out of the clock."""

    def __init__(self, bots, games, seed, game, returns: RoleReturns | None = None,
                 panel_members: list[str] = (), league_bots: list[str] = ()) -> None:
        super().__init__([*bots, *panel_members], games, seed, game=game)
        self.panel_members = list(panel_members)
        self.columns = [*bots, *self.panel_members, *([PANEL] if self.panel_members else []),
                        PAST]
        self.returns = returns
        self.return_roles = returns.roles if returns is not None else []
        self.t0 = time.perf_counter()
        self.eval_seconds = 0.0
        self.rows: list[tuple[float, int, int, dict[str, float]]] = []
        trained = [b for b in bots if b in set(league_bots)]
        print(f"bots: {', '.join(b + ('*' if b in trained else '') for b in bots)} "
              f"(* the league trains against it); held-out panel: "
              f"{', '.join(self.panel_members) or 'none'}"
              + (f"; {PANEL}: the worst panel score" if self.panel_members else "")
              + f"; {PAST}: the worst score against the fixed panel of its own past "
                f"snapshots (eval.panel_*)", flush=True)
        self.widths = [max(10, len(c)) for c in self.columns]
        print(f"{'minutes':>8s} {'updates':>8s} {'agent-steps':>12s} "
              + " ".join(f"{c:>{w}s}" for c, w in zip(self.columns, self.widths))
              + "".join(f" {'return ' + r + ' (x random)':>28s}" for r in self.return_roles),
              flush=True)

    def __call__(self, learner):
        start = time.perf_counter()
        out = super().__call__(learner)
        rets = self.returns(learner) if self.returns is not None else {}
        self.eval_seconds += time.perf_counter() - start
        minutes = (start - self.t0 - (self.eval_seconds - (time.perf_counter() - start))) / 60
        rates = {k[len("eval/win_rate_vs_"):]: v for k, v in out.items()
                 if k.startswith("eval/win_rate_vs_") and "/" not in k[len("eval/win_rate_vs_"):]}
        rates.update({f"{RETURN}:{r}": ratio for r, (_, ratio) in rets.items()})
        if self.panel_members:
            rates[PANEL] = min(rates[m] for m in self.panel_members)
        rates[PAST] = out.get("eval/worst_vs_past_panel", float("nan"))
        self.rows.append((minutes, learner.updates, learner.agent_steps, rates))
        print(f"{minutes:8.1f} {learner.updates:8d} {learner.agent_steps:12,d} "
              + " ".join(f"{rates[c]:{w}.2f}" for c, w in zip(self.columns, self.widths))
              + "".join(f" {rets[r][0]:19.2f} ({rets[r][1]:5.2f}x)" for r in self.return_roles),
              flush=True)
        return out

    def close(self) -> None:
        super().close()
        if self.returns is not None:
            self.returns.close()


def parse_target(text: str) -> tuple[str, float, float]:
    """BOT:RATE:MINUTES, or return:ROLE:RATIO:MINUTES (key "return:ROLE")."""
    parts = text.split(":")
    if parts[0] == RETURN and len(parts) == 4:
        return f"{RETURN}:{parts[1]}", float(parts[2]), float(parts[3])
    if len(parts) != 3 or parts[0] == RETURN:
        raise SystemExit(f"--target {text!r}: expected BOT:RATE:MINUTES or "
                         f"{RETURN}:ROLE:RATIO:MINUTES")
    bot, rate, minutes = parts
    return bot, float(rate), float(minutes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(CONFIG_DIR / "default.yaml"))
    parser.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    parser.add_argument("--every", type=int, default=20, help="evaluate every N updates")
    parser.add_argument("--games", type=int, default=32, help="games per bot per evaluation")
    parser.add_argument("--role-return", action="append", default=[], metavar="ROLE",
                        help="also measure ROLE's return against random (repeatable)")
    parser.add_argument("--baseline-games", type=int, default=512,
                        help="games of the random baseline of --role-return")
    parser.add_argument("--target", action="append", default=None,
                        metavar="BOT:RATE:MINUTES | return:ROLE:RATIO:MINUTES")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. ppo.lr=1e-3")
    args = parser.parse_intermixed_args()  # overrides may follow the options
    if args.config and "=" in args.config:
        args.overrides.insert(0, args.config)
        args.config = str(CONFIG_DIR / "default.yaml")
    from arena.train import train

    name = f"bench-learning-{datetime.now():%Y%m%d-%H%M%S}"
    cfg = load_config(args.config, [
        f"run.name={name}", "trainer.max_updates=1000000", f"eval.every={args.every}",
        f"eval.games={args.games}", *args.overrides])
    members = held_out_panel(cfg, args.config)
    bots = [b for b in bot_names(cfg.game.name) if b not in panel(cfg.game.name)]
    targets = [parse_target(t) for t in
               (args.target or DEFAULT_TARGETS.get(Path(args.config).name, ()))]
    roles = list(dict.fromkeys(args.role_return + [
        key.split(":", 1)[1] for key, _, _ in targets if key.startswith(f"{RETURN}:")]))
    returns = RoleReturns(cfg, roles, args.games, args.baseline_games,
                          cfg.run.seed + 31) if roles else None
    evaluator = TimedEvaluator(bots, args.games, cfg.run.seed + 17, cfg.game.name, returns,
                               panel_members=members, league_bots=list(cfg.league.bots))
    budget = args.minutes * 60

    class Stop:
        """Stops the run once the training time (evaluation excluded) is spent."""

        def __call__(self, learner):
            out = evaluator(learner)
            if time.perf_counter() - evaluator.t0 - evaluator.eval_seconds >= budget:
                learner.trainer.should_stop = True
            return out

    train(cfg, evaluator=Stop())
    print()
    evaluator.close()
    for key, rate, minutes in targets:
        hit = next((r for r in evaluator.rows if r[3].get(key, -1) >= rate), None)
        when = f"first at {hit[0]:.1f} min (update {hit[1]})" if hit else "not reached"
        ok = hit is not None and hit[0] <= minutes
        what = (f"{key.split(':', 1)[1]} return >= {rate:g}x random" if key.startswith(
            f"{RETURN}:") else f"beat every held-out panel member >= {rate:.0%}" if key == PANEL
            else f"beat {key} >= {rate:.0%}")
        print(f"target: {what} within {minutes:.0f} min: {when} "
              f"-> {'met' if ok else 'NOT met'}", file=sys.stdout)


if __name__ == "__main__":
    main()
