"""Training throughput against an honest floor, and against a CleanRL-style baseline.

    python benchmarks/train_throughput.py [--settings moba,moba-league,magent] [--warmup 3] [--updates 10]
                                          [--baseline-seconds 150] [--floor-repeats 3]
                                          [--actors 1,2] [key=value ...]

For each setting, side by side in one run:

* end to end: agent-steps/s of `arena train` (league snapshots as the config has them),
  over `--updates` updates after `--warmup` (numba compiles, caches warm). The training
  alone: evaluations and match GIFs pause training and are timed apart, once each after
  the measured updates as the config has them, and the rate with them counted in at the
  config's intervals is printed beside (`arena train`'s progress line leaves them out
  too; its ETA counts them);
* the floor: the same network modules (built from the run's config, one per policy group)
  doing the least work PPO needs on the same shapes, in plain PyTorch and not through the
  learner — one forward per collected step with action sampling, then update_epochs x
  num_minibatches of forward, backward and Adam (fused, as the learner's) over the
  rollout's chunks with a minimal loss, the observations normalised once per update where
  the encoder reads only those (as the learner does) — for the agent-steps of a real
  rollout of the run, replaying as many chunks as the run did (those with a step that
  trains: that update's `loss/replayed_chunks`), timed right after each measured update,
  for its rollout, its time left out of the next update's: the two alternate, so the
  speed of these machines, which drifts from minute to minute (the floor timed alone
  varied by a third between runs), drifts for both alike.
  end to end / floor (total floor seconds / total seconds of the same updates) is the
  share of time that goes into the network; everything else (game, copies, PPO
  bookkeeping, Python) is the rest, and of it the seconds in the games' own steps are
  printed (`perf/game_seconds`). The floor acts under torch.inference_mode, as the
  collector does: the cheapest way plain PyTorch infers. Where the run skipped chunks, the floor that replays
  every chunk (as the baseline and nn_limit_shapes.py do; `--floor-repeats` times after
  the run, the median) is printed beside it, for reference;
* magent: the shared CleanRL-style single-file LSTM PPO (../shared/bench/
  baseline_lstm_ppo.py) with the same settings, its steady agent-steps/s over the last two
  thirds of `--baseline-seconds`, and `nn_limit_shapes.py` for these shapes (its own plain
  network, for reference);
* peak resident memory of this process and of the baseline.

Settings: `moba` is configs/default.yaml; `moba-league` the same in its league phase: the
pool holds 12 snapshots from the start (a run has that many by update 120), so a fifth of
the mirror games face past selves from the first update, as they do for the rest of a run
(`moba` measures updates before the first snapshot plays); `magent` is magent2 battle_v4 on a 20x20 map, 4
games, 128-step rollouts (8 chunks of 16), 4 epochs, 4 minibatches, MLP 128 + LSTM 128,
no league (the baseline has none). Targets on the 2-core dev machines (issue 11): moba
>= 0.8 of its floor; magent >= 0.7 of its floor and >= 3x the baseline. `key=value`
overrides apply to every setting (e.g. trainer.accelerator=gpu trainer.precision=bf16-mixed,
game.threads=2; on a CPU with AMX, trainer.precision=bf16-mixed alone, with the floor in bf16
too). `--actors N,...` also measures each setting with N actor processes that
collect the next rollout while the learner trains (`actors.ahead=1`: one update of policy
lag, which the synchronous settings above do not have; the floor is then timed after the
run, as the actors would share the cores with it between updates, on all the cores; the
learner starts on the cores the actors leave and tries all of them too, keeping the faster,
arena/learn/callbacks.ThreadChoice: the measured updates come after that choice).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from arena.config import CONFIG_DIR, load_config
from arena.learn.callbacks import ThreadChoice

SHARED_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"
MAGENT = ["game.options.map_size=20", "game.options.max_cycles=1000", "game.num_envs=4",
          "ppo.chunk_len=16", "ppo.chunks_per_update=8", "ppo.update_epochs=4",
          "ppo.num_minibatches=4", "model.encoder=mlp", "model.hidden=128",
          "model.lstm_hidden=128", "league.enabled=false", "eval.every=0", "watch.every=0"]
SETTINGS = {  # name: (config, overrides, snapshots in the league pool from the start)
    "moba": (CONFIG_DIR / "default.yaml", [], 0),
    "moba-league": (CONFIG_DIR / "default.yaml", [], 12),
    "magent": (CONFIG_DIR / "magent_battle.yaml", MAGENT, 0),
}


# ---- the floor ---------------------------------------------------------------------------------
class Floor:
    """The least network work PPO needs for one rollout of `cfg` with `games` games: the
    config's own modules, plain PyTorch, on the config's accelerator (CUDA when it says
    gpu/cuda) and precision (bf16 autocast). Built once (and warmed up); `seconds()` times
    one rollout's worth."""

    def __init__(self, cfg, games: int) -> None:
        import contextlib

        from arena.learn.networks import build_policy, policy_groups
        from arena.learn.update import make_adam
        from games.vector import make_vec

        self.p = p = cfg.ppo
        if cfg.trainer.num_threads:  # as the learner runs (arena/learn/learner.py setup)
            torch.set_num_threads(cfg.trainer.num_threads)
        self.L, self.T = p.chunk_len * p.chunks_per_update, p.chunk_len
        gpu = cfg.trainer.accelerator in ("gpu", "cuda") or (
            cfg.trainer.accelerator == "auto" and torch.cuda.is_available())
        self.dev = dev = torch.device("cuda" if gpu else "cpu")
        bf16 = str(cfg.trainer.precision).startswith("bf16")
        self.autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if bf16 \
            else contextlib.nullcontext
        self.sync = torch.cuda.synchronize if gpu else (lambda: None)
        vec = make_vec(cfg.game.name, games, **cfg.game.options)
        try:
            step = vec.reset(seed=0)
            groups = policy_groups(vec, cfg.model.per_agent_weights)
            self.policies = {g.key: build_policy(g.role, cfg).to(dev) for g in groups}
            self.obs, self.masks = {}, {}
            for g in groups:  # one real observation per row, reused at every step
                o = step.obs[g.role.name][:, list(g.role_columns)]
                m = step.action_mask[g.role.name][:, list(g.role_columns)]
                self.obs[g.key] = torch.from_numpy(np.ascontiguousarray(o)).reshape(
                    -1, o.shape[-1]).to(dev)
                self.masks[g.key] = torch.from_numpy(np.ascontiguousarray(m)).reshape(
                    -1, m.shape[-1]).to(dev)
        finally:
            vec.close()
        # the learner's Adam (fused where torch has it): the cheapest step plain PyTorch takes
        self.opt = make_adam([q for pol in self.policies.values() for q in pol.parameters()],
                             p.lr)
        # A policy whose encoder reads only normalised observations gets its rollout's
        # observations normalised once per update, as the learner does, rather than in every
        # forward: (L, rows, D) buffers, normalised into at each update.
        self.rollout_obs = {k: (self.obs[k].expand(self.L, *self.obs[k].shape).contiguous(),
                                torch.empty((self.L, *self.obs[k].shape), device=dev))
                            for k, pol in self.policies.items() if not pol.reads_raw_obs}
        self._batches: dict[tuple[str, int], tuple] = {}
        self.seconds()  # warm-up

    def collect(self) -> None:
        dev, obs, masks = self.dev, self.obs, self.masks
        # inference_mode, as the collector plays: the cheapest way plain PyTorch acts
        with torch.inference_mode(), self.autocast():
            state = {k: pol.initial_state(obs[k].shape[0], dev)
                     for k, pol in self.policies.items()}
            for _ in range(self.L):
                for k, pol in self.policies.items():
                    starts = torch.zeros(obs[k].shape[0], dtype=torch.bool, device=dev)
                    logits, _, state[k] = pol.step(obs[k], state[k], starts, masks[k])
                    torch.multinomial(torch.softmax(logits.float(), -1), 1)

    def batch(self, k: str, replayed: float) -> tuple:
        """A minibatch: (T, chunks, ...) of the recorded rows, as many chunks as PPO takes."""
        rows = self.obs[k].shape[0]
        n = max(round(self.L // self.T * rows * replayed) // self.p.num_minibatches, 1)
        if (k, n) not in self._batches:
            pick = torch.arange(n, device=self.dev) % rows
            self._batches[k, n] = (
                self.obs[k][pick].unsqueeze(0).expand(self.T, -1, -1).contiguous(),
                self.masks[k][pick].unsqueeze(0).expand(self.T, -1, -1).contiguous(),
                torch.zeros(self.T, n, dtype=torch.bool, device=self.dev), n)
        return self._batches[k, n]

    def update(self, replayed: float) -> None:
        p, dev = self.p, self.dev
        batches = {k: self.batch(k, replayed) for k in self.policies}
        with torch.no_grad():
            for k, (raw, out) in self.rollout_obs.items():
                self.policies[k].normalize_obs(raw, out=out)
        for _ in range(p.update_epochs * p.num_minibatches):
            total = torch.zeros((), device=dev)
            for k, pol in self.policies.items():
                x, m, starts, n = batches[k]
                with self.autocast():
                    logits, values, _ = pol.forward_sequence(
                        x, pol.initial_state(n, dev), starts, m,
                        normalized=k in self.rollout_obs)  # (values unused: a timing)
                total = total + logits.float().logsumexp(-1).mean() + values.float().pow(2).mean()
            self.opt.zero_grad()
            total.backward()
            self.opt.step()

    def seconds(self, replayed: float = 1.0) -> tuple[float, float]:
        """(collection forward seconds, update seconds) of one rollout. `replayed`: the
        share of the rollout's chunks that have a step to train on (the rest add nothing to
        the loss; the run's `loss/replayed_chunks`)."""
        self.sync()
        t0 = time.perf_counter()
        self.collect()
        self.sync()
        t1 = time.perf_counter()
        self.update(replayed)
        self.sync()
        return t1 - t0, time.perf_counter() - t1


# ---- end to end, the floor timed between its updates ------------------------------------------
class Probe(Callback):
    """Times each of `updates` updates after `warmup`, and right after each one the floor
    for that update's rollout (the share of chunks it replayed): the two alternate, so a
    machine whose speed drifts from minute to minute drifts for both alike. The floor's
    time is not counted in the next update's. After the measured updates, stops.

    With actor processes, which collect while the learner's callbacks run, a floor timed
    there would share the cores with them: it is timed after the run instead
    (`figures(repeats)`, the median of 2 x repeats)."""

    def __init__(self, cfg, warmup: int, updates: int, snapshots: int = 0,
                 pausing=None) -> None:
        self.cfg, self.warmup, self.updates = cfg, warmup, updates
        self.pausing = pausing  # the config with its evaluation and GIFs, timed at the end
        self.pauses: dict[str, tuple[int, float]] = {}  # name: (every, seconds)
        self.snapshots = snapshots
        self.interleave = not cfg.actors.num_workers
        self.floor: Floor | None = None
        self.since = 0.0  # when the update now running started (its clock)
        self.steps_before = 0
        # per measured update: (seconds, agent-steps, floor forward s, floor update s, replayed,
        # seconds in the games' own steps (nan with actors: they step the games))
        self.measured: list[tuple[float, int, float, float, float]] = []
        self.learner_threads: set[int] = set()  # torch threads of the measured updates
        # at the last measured update: (share of games against snapshots, distinct snapshots)
        self.vs_snapshots: tuple[float, int] | None = None

    def on_train_start(self, trainer, learner) -> None:
        for _ in range(self.snapshots):  # before the first rollout draws the opponents
            learner.snapshot()

    def on_train_batch_end(self, trainer, learner, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if learner.updates == self.warmup and self.interleave:
            self.floor = Floor(self.cfg, self.cfg.game.num_envs)  # built and warmed up here
        elif learner.updates > self.warmup:
            replayed = learner.last_metrics.get("loss/replayed_chunks", 1.0)
            forward, update = self.floor.seconds(replayed) if self.interleave else (np.nan,) * 2
            self.measured.append((now - self.since, learner.agent_steps - self.steps_before,
                                  forward, update, replayed,
                                  learner.last_metrics.get("perf/game_seconds", np.nan)))
            self.learner_threads.add(int(learner.last_metrics.get("perf/torch_threads", 0)))
            opponents = getattr(learner.collector, "opponents", None)  # None: in actors
            if opponents is not None:
                drawn = opponents.snapshot[opponents.snapshot >= 0]
                self.vs_snapshots = (drawn.size / opponents.snapshot.size, np.unique(drawn).size)
        if learner.updates >= self.warmup + self.updates:
            if self.pausing is not None:
                self.pauses = time_pauses(self.pausing, learner)
            trainer.should_stop = True
        self.steps_before = learner.agent_steps
        self.since = time.perf_counter()

    def figures(self, repeats: int = 3) -> dict[str, float]:
        m = np.array(self.measured)
        if not self.interleave:  # the floor after the run, for the mean share replayed
            self.floor = self.floor or Floor(self.cfg, self.cfg.game.num_envs)
            floors = [self.floor.seconds(float(m[:, 4].mean())) for _ in range(2 * repeats)]
            m[:, 2:4] = sorted(floors, key=sum)[len(floors) // 2]
        seconds, steps, forward, update = m[:, 0].sum(), m[:, 1].sum(), m[:, 2].sum(), m[:, 3].sum()
        ratios = (m[:, 2] + m[:, 3]) / m[:, 0]
        return {"e2e": steps / seconds, "floor": steps / (forward + update),
                "forward": forward / len(m), "update": update / len(m),
                "rollout_steps": steps / len(m), "replayed": float(m[:, 4].mean()),
                "game": float(m[:, 5].mean()), "game_share": float(m[:, 5].sum() / seconds),
                "ratio": (forward + update) / seconds, "ratio_min": float(ratios.min()),
                "ratio_max": float(ratios.max())}


def time_pauses(cfg, learner) -> dict[str, tuple[int, float]]:
    """One evaluation and one match GIF of `cfg` (where it has them) on the learner as it
    is now: {name: (every how many updates, seconds)}."""
    from arena.train import bot_evaluator, watcher

    out = {}
    evaluator = bot_evaluator(cfg) if cfg.eval.every > 0 else None
    if evaluator is not None:
        t0 = time.perf_counter()
        evaluator(learner)
        out["evaluation"] = (cfg.eval.every, time.perf_counter() - t0)
        evaluator.close()
    if cfg.watch.every > 0:
        gifs = watcher(cfg)
        t0 = time.perf_counter()
        gifs(learner)
        out["match GIF"] = (cfg.watch.every, time.perf_counter() - t0)
    return out


def end_to_end(path: Path, overrides: list[str], warmup: int, updates: int, snapshots: int = 0,
               pauses: bool = True):
    from arena.train import train

    with tempfile.TemporaryDirectory() as root:
        own = [f"run.root={root}", "run.name=throughput",
               f"trainer.max_updates={warmup + updates + 1}", *overrides]
        # the updates are timed without pauses; the config's evaluation and GIFs after them
        cfg = load_config(path, [*own, "eval.every=0", "watch.every=0"])
        probe = Probe(cfg, warmup, updates, snapshots,
                      pausing=load_config(path, own) if pauses else None)
        train(cfg, callbacks=[probe])
    return cfg, probe


# ---- references we did not write -------------------------------------------------------------
def baseline(seconds: float, threads: int) -> tuple[float | None, float | None, str]:
    """The shared CleanRL-style baseline on the magent setting: (steady agent-steps/s, its
    peak RSS in MiB, a note)."""
    script = SHARED_BENCH / "baseline_lstm_ppo.py"
    if not script.is_file():
        return None, None, f"not found: {script}"
    cmd = [sys.executable, str(script), "--env", "magent2.environments.battle_v4:parallel_env",
           "--env-kwargs", json.dumps({"map_size": 20, "max_cycles": 1000}), "--num-envs", "4",
           "--num-steps", "128", "--hidden", "128", "--update-epochs", "4",
           "--num-minibatches", "4", "--total-agent-steps", str(10**9),
           "--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    points: list[tuple[float, int]] = []
    start = time.time()
    pattern = re.compile(r"agent_steps (\d+)")
    rss = None
    try:
        for line in proc.stdout:
            m = pattern.search(line)
            if m:
                points.append((time.time(), int(m.group(1))))
            if time.time() - start > seconds:
                break
        rss = _peak_rss_of(proc.pid)  # its own peak, read before it is killed
    finally:
        proc.kill()
        proc.wait()
    if len(points) < 4:
        return None, rss, f"too few progress lines ({len(points)}) in {seconds:.0f} s"
    w = points[len(points) // 3:]
    rate = (w[-1][1] - w[0][1]) / (w[-1][0] - w[0][0])
    return rate, rss, f"steady over {w[-1][0] - w[0][0]:.0f} s, {len(w)} updates"


def _peak_rss_of(pid: int) -> float | None:
    """A running process's peak resident memory in MiB (Linux: VmHWM), else None. (Not
    getrusage(RUSAGE_CHILDREN): a child forked from this process starts with its pages.)"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def nn_limit(obs_dim: int, actions: int, rows: int, threads: int) -> str:
    script = SHARED_BENCH / "nn_limit_shapes.py"
    if not script.is_file():
        return f"not found: {script}"
    out = subprocess.run([sys.executable, str(script), str(obs_dim), str(actions), str(rows)],
                         capture_output=True, text=True, timeout=600,
                         env={"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"})
    return (out.stdout.strip() or out.stderr.strip().splitlines()[-1]) if out.returncode == 0 \
        else f"failed: {out.stderr.strip().splitlines()[-1]}"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="moba,moba-league,magent")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--baseline-seconds", type=float, default=150.0)
    parser.add_argument("--floor-repeats", type=int, default=3,
                        help="the every-chunk reference floor is timed this many times "
                             "after the run (median)")
    parser.add_argument("--actors", default="", metavar="N,...",
                        help="also measure each setting with this many actor processes "
                             "(actors.ahead=1), e.g. 1,2")
    parser.add_argument("overrides", nargs="*", help="config overrides for every setting")
    args = parser.parse_args()
    # as the learner does (arena/memory.py), so the floor is timed with the allocator
    # settings of the run
    from arena.memory import keep_freed_memory

    keep_freed_memory()
    threads = torch.get_num_threads()
    base_rates: dict[str, float] = {}
    for name in [s.strip() for s in args.settings.split(",") if s.strip()]:
        path, own, snapshots = SETTINGS[name]
        # the floor is timed after each measured update, for that update's rollout
        cfg, probe = end_to_end(path, [*own, *args.overrides], args.warmup, args.updates,
                                snapshots)
        f = probe.figures(args.floor_repeats)
        g = cfg.game
        print(f"[{name}] {g.name} {dict(g.options)}, {g.num_envs} games, "
              f"{cfg.ppo.chunk_len * cfg.ppo.chunks_per_update} steps per rollout, "
              f"{cfg.ppo.update_epochs} epochs x {cfg.ppo.num_minibatches} minibatches, "
              f"torch threads {threads}")
        league = "" if not probe.vs_snapshots else (
            f"; at the end {probe.vs_snapshots[0]:.0%} of the games against past snapshots, "
            f"{probe.vs_snapshots[1]} distinct")
        print(f"[{name}] end to end   {f['e2e']:10,.0f} agent-steps/s  (over {args.updates} "
              f"updates{league})")
        print(f"[{name}] floor        {f['floor']:10,.0f} agent-steps/s  (forward {f['forward']:.2f} s + "
              f"update {f['update']:.2f} s per {f['rollout_steps']:,.0f} agent-steps, same modules; "
              f"{f['replayed']:.0%} of the chunks replayed as in the run; "
              + ("timed after each update, for its rollout)" if probe.interleave
                 else "timed after the run: actors collect between updates)"))
        target = 0.8 if name.startswith("moba") else 0.7
        print(f"[{name}] ratio        {f['ratio']:10.2f}  (target >= {target}; per update "
              f"{f['ratio_min']:.2f}-{f['ratio_max']:.2f})")
        if np.isfinite(f["game"]):  # what the floor leaves out: the game is not the network
            floor_s = f["forward"] + f["update"]
            print(f"[{name}] games' steps {f['game']:10.2f} s per update  ({f['game_share']:.0%} "
                  "of end to end; the floor has none: a run that steps its games between "
                  f"inferences reaches at most {floor_s / (floor_s + f['game']):.2f})")
        if f["replayed"] < 0.995:  # for reference: the floor of a PPO that replays every chunk
            every = [probe.floor.seconds() for _ in range(args.floor_repeats)]
            f_all, u_all = sorted(every, key=sum)[len(every) // 2]
            print(f"[{name}]   every chunk replayed: floor {f['rollout_steps'] / (f_all + u_all):,.0f} "
                  f"agent-steps/s (update {u_all:.2f} s), end to end / it "
                  f"{f['e2e'] * (f_all + u_all) / f['rollout_steps']:.2f} (timed after the run)")
        if probe.pauses:  # the rate a run of this config shows over its whole length
            per_update = f["rollout_steps"] / f["e2e"]
            paused = sum(sec / every for every, sec in probe.pauses.values())
            what = ", ".join(f"{k} every {every} updates, {sec:.1f} s"
                             for k, (every, sec) in probe.pauses.items())
            print(f"[{name}] with pauses  {f['rollout_steps'] / (per_update + paused):10,.0f} "
                  f"agent-steps/s  ({what}, timed once after the measured updates: "
                  f"{paused / (per_update + paused):.0%} of a run's time)")
        print(f"[{name}] peak RSS     {peak_rss_mib():10,.0f} MiB (this process so far)",
              flush=True)
        if name == "magent":
            rate, rss, note = baseline(args.baseline_seconds, threads)
            if rate is None:
                print(f"[{name}] baseline     unavailable ({note})")
            else:
                peak = "unknown" if rss is None else f"{rss:,.0f} MiB"
                print(f"[{name}] baseline     {rate:10,.0f} agent-steps/s  (CleanRL-style "
                      f"LSTM PPO, {note}; peak RSS {peak})")
                print(f"[{name}] vs baseline  {f['e2e'] / rate:10.2f}x (target >= 3)")
                base_rates[name] = rate
            from arena.learn.networks import policy_groups
            from games.vector import make_vec

            vec = make_vec(g.name, g.num_envs, **g.options)
            (grp,) = policy_groups(vec, False)
            rows = g.num_envs * len(grp.slots)
            vec.close()
            print(f"[{name}] nn_limit     {nn_limit(grp.role.obs_dim, grp.role.num_actions, rows, threads)}",
                  flush=True)
    for n in [int(x) for x in args.actors.split(",") if x.strip()]:
        for name in [s.strip() for s in args.settings.split(",") if s.strip()]:
            path, own, snapshots = SETTINGS[name]
            # warm-up past the learner's choice of threads beside the actors
            cfg, probe = end_to_end(path, [*own, f"actors.num_workers={n}", "actors.ahead=1",
                                           *args.overrides],
                                    max(args.warmup, ThreadChoice().trial_updates), args.updates,
                                    snapshots, pauses=False)  # actors would collect beside them
            f = probe.figures(args.floor_repeats)
            vs = f", {f['e2e'] / base_rates[name]:.2f}x the baseline" if name in base_rates else ""
            # collection overlaps the update here, so the run may beat forward + update: the
            # stricter floor is the longer of the two alone (as if the other cost nothing)
            longer = max(f["forward"], f["update"])
            print(f"[{name}] {n} actor process{'es' if n > 1 else ' '} (actors.ahead=1) "
                  f"{f['e2e']:10,.0f} agent-steps/s, floor {f['floor']:,.0f} (timed after the "
                  f"run, torch threads {threads}; the learner's "
                  f"{'/'.join(map(str, sorted(probe.learner_threads)))}), "
                  f"ratio {f['ratio']:.2f}{vs}; "
                  f"{f['e2e'] * longer / f['rollout_steps']:.2f} of the longer of forward "
                  f"and update alone ({f['rollout_steps'] / longer:,.0f} agent-steps/s)",
                  flush=True)


if __name__ == "__main__":
    main()
