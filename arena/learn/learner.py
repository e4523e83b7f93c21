"""The Lightning learner: one LightningModule owns the PPO update of every policy group.

Each training step takes one rollout from the collector (no prefetch: the `dataloader_iter`
step flavour pulls the next rollout only after the previous update, so PPO always trains
on data from the current policy), shapes its rewards, computes GAE with value
normalisation, and runs K epochs over minibatches of whole chunks, replaying each chunk
from its stored LSTM state. The Trainer owns devices, precision, checkpoints, loggers and
the progress bar.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
import zmq
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from agents.normalize import ValueNorm
from agents.policy import RecurrentPolicy
from arena.config import Config, config_from_dict, to_dict
from arena.learn.networks import (
    PolicyGroup,
    build_policy,
    group_module_key,
    policy_groups,
    pool_settings,
)
from arena.learn.opponents import OpponentManager, pool_metrics
from arena.learn.rollout import (
    Collector,
    Rollout,
    RolloutSpec,
    collection_vec,
)
from arena.learn.surgery import arch_metadata, policy_arch
from arena.learn.update import make_adam, ppo_update
from arena.memory import keep_freed_memory
from arena.rundir import starts_recorded
from arena.scale.actors import ActorCollector, ActorService
from arena.scale.distributed import all_reduce_sum, broadcast_text, world_size
from arena.scale.league_link import ControlClient, PoolMirror, sync_league
from arena.scale.transport import CurveKeys
from games.registry import bot_anchors
from games.vector import make_vec
from league.exploiters import MAIN, Exploiter, exploiter_names, game_blocks
from league.pool import OpponentPool
from league.ratings import RatingTable
from league.schedule import gamma_at
from league.shaping import Shaper, team_spirit_at

MAX_UPDATES_WITHOUT_STEP = 3  # updates in a row with every optimiser step skipped: stop


class TrainingDiverged(RuntimeError):
    """Every optimiser step of several updates in a row was skipped (non-finite losses)."""


class _RolloutStream(IterableDataset):
    def __init__(self, learner: PPOLearner) -> None:
        self.learner = learner

    def __iter__(self) -> Iterator[Rollout]:
        while True:
            self.learner.sync_league_mirrors()
            yield self.learner.collector.collect()


def learner_threads(cfg: Any, available: int) -> int:
    """The learner's torch threads: `trainer.num_threads` if set; else the `available`
    ones (this rank's share of the cores), less those of the local actor processes where
    they collect ahead (`actors.ahead` >= 1), i.e. while the learner updates.

    Why: on a machine of a few cores, an actor collecting on one core beside a learner
    that runs its update on all of them oversubscribes the cores, and both can crawl
    (OpenMP threads wait on the one the actor holds): on 2 cores with one actor ahead, one
    learner thread trained magent2 battle 1.35-1.6x faster end to end than two. Not always
    (the MOBA in float32 was faster with two), so this is where a run starts, and
    arena.learn.callbacks.ThreadChoice tries all the cores too. Actors in step with the
    learner (ahead 0) wait while it updates, so it keeps every core."""
    if cfg.trainer.num_threads:
        return int(cfg.trainer.num_threads)
    a = cfg.actors
    if a.num_workers and a.ahead:
        return max(1, available - a.num_workers * a.threads)
    return available


class PPOLearner(L.LightningModule):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg: Config = config_from_dict(config)
        self.automatic_optimization = False
        cfg = self.cfg
        probe = make_vec(cfg.game.name, 1, **cfg.game.options)
        try:
            self.slot_team = np.asarray(probe.slot_team)
            self.team_names = list(probe.team_names)
            self.slot_agents = list(probe.slot_agents)
            self.event_names = tuple(probe.event_names)
            self.groups: list[PolicyGroup] = policy_groups(probe, cfg.model.per_agent_weights)
            self.signature = {
                "game": cfg.game.name,
                "agents": self.slot_agents,
                "roles": {r.name: [r.obs_dim, r.num_actions] for r in probe.roles},
            }
        finally:
            probe.close()
        self.policies = nn.ModuleDict(
            {group_module_key(g.key): build_policy(g.role, cfg) for g in self.groups})
        self.value_norms = nn.ModuleDict(
            {group_module_key(g.key): ValueNorm() for g in self.groups})
        # League exploiters (league/exploiters.py): more learning agents in the same run,
        # each a copy of the main's networks that trains on its own block of games.
        lg = cfg.league
        self.league_roles = [
            Exploiter(name, kind, window=lg.exploiter_window, win_rate=lg.exploiter_win_rate,
                      max_updates=lg.exploiter_max_updates)
            for name, kind in exploiter_names(lg.main_exploiters, lg.league_exploiters)]
        self.exploiters = nn.ModuleDict({
            e.name: nn.ModuleDict({"policies": copy.deepcopy(self.policies),
                                   "value_norms": copy.deepcopy(self.value_norms)})
            for e in self.league_roles})
        self.shaper = Shaper(self.event_names, self.slot_team, env_weight=cfg.reward.env_weight,
                             weights=dict(cfg.reward.weights), zero_sum=cfg.reward.zero_sum,
                             time_decay_ticks=cfg.reward.time_decay_ticks)
        self.updates = 0
        self.agent_steps = 0
        self.failed_collecting = False  # the last error came from collection, not an update
        self.collector: Collector | None = None
        self._mb_generator = torch.Generator().manual_seed(cfg.run.seed + 1)
        self._t_start = time.perf_counter()
        self._steps_at_start = 0
        self.last_metrics: dict[str, float] = {}
        self.win_rates: dict[str, float] = {}  # latest evaluation against scripted bots
        # seconds spent in periodic work that pauses training (evaluation, GIFs), added by
        # those callbacks (arena/learn/callbacks.Periodic); the progress line leaves it out
        self.paused_seconds = 0.0
        self.run_dir: Path | None = None  # set by arena.train; the league pool lives there
        self.pools: dict[str, OpponentPool] = {}
        # arena.scale.actors.ActorService: actors, or the league for other ranks
        self.service = None
        self._threads_before: int | None = None  # torch threads before setup (see teardown)
        # (cores the actors leave, all cores): the two thread counts arena.learn.callbacks.
        # ThreadChoice tries, where actors collect ahead and trainer.num_threads is unset
        self.thread_candidates: tuple[int, int] | None = None
        self._league_client = None  # ranks > 0: rank 0's control socket, for their pool mirrors
        # the latest policy at each evaluation, on the scale of the game's bots
        self.ratings = RatingTable(anchors=bot_anchors(cfg.game.name))
        self._updates_without_step = 0
        self.surgeries: list[dict[str, Any]] = []  # network changes of this run, with updates

    # ---- Lightning plumbing -------------------------------------------------------------
    def policy_for(self, key: str) -> RecurrentPolicy:
        return self.policies[group_module_key(key)]

    def agent_networks(self, agent: str) -> tuple[dict[str, RecurrentPolicy], dict[str, ValueNorm]]:
        """A learning agent's (the main's or an exploiter's) policies and value normalisers,
        by group key."""
        if agent == MAIN:
            policies, norms = self.policies, self.value_norms
        else:
            policies = self.exploiters[agent]["policies"]
            norms = self.exploiters[agent]["value_norms"]
        return ({g.key: policies[group_module_key(g.key)] for g in self.groups},
                {g.key: norms[group_module_key(g.key)] for g in self.groups})

    def game_blocks(self, games: int) -> list[tuple[str, int, int]]:
        return game_blocks(games, [e.name for e in self.league_roles],
                           self.cfg.league.exploiter_games)

    def setup(self, stage: str) -> None:
        cfg = self.cfg
        keep_freed_memory()  # arena/memory.py: large tensors reuse freed memory
        self._threads_before = available = torch.get_num_threads()  # given back at teardown
        threads = learner_threads(cfg, available)
        if threads != available:
            if not cfg.trainer.num_threads:
                self.thread_candidates = (threads, available)
                if self.global_rank == 0:
                    print(f"torch threads: {threads} of {available} (the other "
                          f"{available - threads} for the actor processes, which collect while "
                          f"the learner updates); the first updates try {available} too and "
                          "keep the faster (trainer.num_threads sets it)", flush=True)
            torch.set_num_threads(threads)
        rank, ranks = self.global_rank, world_size()
        a = cfg.actors
        use_actors = a.num_workers > 0 or a.listen
        league = cfg.league.enabled and self.run_dir is not None
        games = a.num_envs or cfg.game.num_envs
        # Rank 0 owns the league on disk; actors and other ranks reach it over its control
        # socket (arena/scale/actors.py), whose address every rank learns by broadcast.
        league_endpoint = ""
        need = a.rollouts_per_update or max(a.num_workers, 1)
        per_version = -(-need // max(a.num_workers, 1))  # each actor's share of an update
        if rank == 0 and (use_actors or (league and ranks > 1)):
            self.service = ActorService(to_dict(cfg), rank, self.run_dir / "league" if league else None,
                                        None, games, per_version, life=starts_recorded(self.run_dir))
            league_endpoint = _reachable(self.service.endpoint)
        if league and ranks > 1:
            league_endpoint = broadcast_text(league_endpoint)
        if rank > 0 and use_actors:
            self.service = ActorService(to_dict(cfg), rank, None,
                                        league_endpoint if league else None, games, per_version,
                                        life=starts_recorded(self.run_dir))
        if league and rank == 0:
            self.pools = self.open_pools(self.run_dir / "league")
        elif league:
            secure = CurveKeys(Path(a.curve_keys)).client if a.curve_keys else None
            self._league_client = ControlClient(
                self.service.context if self.service else zmq.Context.instance(),
                league_endpoint, secure, timeout_s=a.timeout_s)
            self.pools = {role: PoolMirror(role, self._league_client, **pool_settings(cfg))
                          for role in sorted({g.role.name for g in self.groups})}
        if use_actors:
            self.collector = ActorCollector(
                self.service, self.rollout_spec(games), need=need,
                max_staleness=a.max_staleness, timeout_s=a.timeout_s,
                version=lambda: self.updates, weights=self.actor_weights, device=self.device)
            if a.listen or a.port:
                print(f"rank {rank}: actors connect with `arena actor --connect "
                      f"{_reachable(self.service.endpoint)}`", file=sys.stderr, flush=True)
            return
        vec = collection_vec(cfg, cfg.game.num_envs)
        blocks = self.game_blocks(vec.num_games)
        live = {name: self.agent_networks(name)[0] for name, _, _ in blocks}
        opponents = None
        if league:
            opponents = OpponentManager(
                vec, self.groups, self.pools,
                build=lambda key: build_policy(self._group(key).role, cfg),
                module_key=group_module_key, seed=cfg.run.seed + 31 * rank + 5,
                device=self.device, bots=list(cfg.league.bots), bot_prob=cfg.league.bot_prob,
                game=cfg.game.name, agents=blocks, live=live, exploiters=self.league_roles)
        self.collector = Collector(
            vec, live[MAIN], self.groups,
            chunk_len=cfg.ppo.chunk_len, num_chunks=cfg.ppo.chunks_per_update,
            seed=cfg.run.seed + 7919 * rank, device=self.device, opponents=opponents,
            blocks=[(live[name], b0, b1) for name, b0, b1 in blocks], overlap=cfg.game.overlap)

    def rollout_spec(self, games: int) -> RolloutSpec:
        p = self.cfg.ppo
        groups = tuple((g.key, len(g.slots), g.role.obs_dim, g.role.num_actions,
                        self.policy_for(g.key).initial_state(1, "cpu")[0].shape[-1])
                       for g in self.groups)
        return RolloutSpec(p.chunk_len * p.chunks_per_update, p.chunks_per_update, games,
                           len(self.slot_agents), len(self.event_names), groups)

    def actor_weights(self) -> tuple[dict[str, torch.Tensor], float]:
        """What actors run: the policies' weights and normalisers (on CPU), and gamma."""
        weights = {k: v.detach().cpu() for k, v in self.state_dict().items()
                   if k.startswith("policies.")}
        return weights, self.gamma()

    def sync_league_mirrors(self) -> None:
        """Ranks > 0 collecting in-process: send results to rank 0, take its pool index."""
        if self._league_client is not None:
            sync_league(self._league_client, self.pools)

    def serve_league(self) -> None:
        """Rank 0: apply results that actors and other ranks sent; publish the pool index."""
        if self.service is None or not self.pools or self.global_rank != 0:
            return
        for role, snapshot_id, score in self.service.control.drain_results():
            if role in self.pools:
                self.pools[role].record(snapshot_id, score)
        self.service.control.league_state = {role: pool.state_dict()
                                             for role, pool in self.pools.items()}

    def _group(self, key: str) -> PolicyGroup:
        return next(g for g in self.groups if g.key == key)

    def open_pools(self, directory: Path) -> dict[str, OpponentPool]:
        """One pool of past snapshots per role (both MOBA teams share the role "hero"); a
        damaged index is rebuilt from the checkpoint a resumed run loads."""
        return {role: OpponentPool.open(directory / role, recover=True, **pool_settings(self.cfg))
                for role in sorted({g.role.name for g in self.groups})}

    def snapshot(self, agent: str = MAIN) -> None:
        """Freeze the current weights of every role of `agent` (the main or an exploiter)
        into its pool; every snapshot is stored as `policies.<group>.*`, whoever it was."""
        policies = self.agent_networks(agent)[0]
        for role, pool in self.pools.items():
            weights = {f"policies.{group_module_key(key)}.{name}": value.detach().cpu().clone()
                       for key, policy in policies.items() if self._group(key).role.name == role
                       for name, value in policy.state_dict().items()}
            arch = arch_metadata({group_module_key(key): policy_arch(policy, self._group(key).role)
                                  for key, policy in policies.items()
                                  if self._group(key).role.name == role})
            pool.add(weights, update=self.updates, agent_steps=self.agent_steps, source=agent,
                     arch=arch)

    def tend_exploiters(self) -> dict[str, float]:
        """After each update: an exploiter that beats its opponents over a full window, or
        has trained `exploiter_max_updates` since its last reset, is frozen into the pool
        and starts again from the main's current weights, with a fresh optimiser state."""
        out: dict[str, float] = {}
        for e in self.league_roles:
            why = e.reset_due()
            if why is None:
                continue
            if self.pools:
                self.snapshot(e.name)
            self.reset_exploiter(e.name)
            e.reset()
            out[f"league/{e.name}/reset_{why}"] = 1.0
            print(f"league: {e.name} {'beat its opponents' if why == 'beats' else 'timed out'}"
                  f" at update {self.updates}; frozen into the pool and reset to the main",
                  file=sys.stderr, flush=True)
        return out

    def reset_exploiter(self, name: str) -> None:
        """The exploiter's networks := the main's; its Adam moments forgotten."""
        module = self.exploiters[name]
        module["policies"].load_state_dict(self.policies.state_dict())
        module["value_norms"].load_state_dict(self.value_norms.state_dict())
        if self._trainer is not None:
            optimizer = self.optimizers()
            optimizer = getattr(optimizer, "optimizer", optimizer)
            for p in module.parameters():
                optimizer.state.pop(p, None)

    def teardown(self, stage: str) -> None:
        if self._threads_before:  # setup's thread count is this run's, not the process's
            torch.set_num_threads(self._threads_before)
        if self._league_client is not None:  # its socket lives on the service's context
            self._league_client.close()
            self._league_client = None
        if self.collector is not None:
            self.collector.close()
            self.collector = None
        if self.service is not None:
            self.service.close()
            self.service = None

    def configure_optimizers(self):
        return make_adam(self.parameters(), self.cfg.ppo.lr)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_RolloutStream(self), batch_size=None, collate_fn=_identity)

    def on_fit_start(self) -> None:
        self.collector.device = self.device
        self.serve_league()
        self._t_start = time.perf_counter()
        self._steps_at_start = self.agent_steps

    # ---- schedules ---------------------------------------------------------------------
    def gamma(self) -> float:
        g = self.cfg.gamma
        return gamma_at(self.updates, g.start, g.end, g.anneal_updates, g.mode)

    def team_spirit(self) -> float:
        r = self.cfg.reward
        return team_spirit_at(self.updates, r.team_spirit_start, r.team_spirit_end,
                              r.team_spirit_anneal_updates)

    def learning_rate(self) -> float:
        p = self.cfg.ppo
        if not p.anneal_lr:
            return p.lr
        return p.lr * max(1.0 - self.updates / self.cfg.trainer.max_updates, 0.0)

    # ---- the update ----------------------------------------------------------------------
    def training_step(self, dataloader_iter):
        try:
            rollout, _, _ = next(dataloader_iter)
        except StopIteration:
            raise
        except Exception:
            # a game failed while the next rollout was collected: the weights, optimiser and
            # league are still those of the last finished update (UpdateCheckpoint saves them)
            self.failed_collecting = True
            raise
        t_learn = time.perf_counter()
        metrics = self.ppo_update(rollout)
        learn_seconds = time.perf_counter() - t_learn
        self.updates += 1
        for e in self.league_roles:
            e.updates_since_reset += 1
        steps = rollout.agent_steps
        if world_size() > 1:  # counters are global: every rank's agent-steps
            steps = int(all_reduce_sum(torch.tensor([steps], dtype=torch.float64,
                                                    device=self.device)).item())
        self.agent_steps += steps
        if isinstance(self.collector, ActorCollector):
            self.collector.publish()  # actors switch to the new weights as soon as possible
            metrics["actors/sample_reuse"] = metrics["loss/epochs"]
        elapsed = time.perf_counter() - self._t_start
        metrics.update({
            "perf/collect_agent_steps_per_s": steps / max(rollout.seconds, 1e-9),
            "perf/learn_agent_steps_per_s": steps / max(learn_seconds, 1e-9),
            "perf/agent_steps_per_s": (self.agent_steps - self._steps_at_start) / max(elapsed, 1e-9),
            "perf/collect_seconds": rollout.seconds,
            "perf/learn_seconds": learn_seconds,
            "perf/torch_threads": float(torch.get_num_threads()),
            "progress/updates": float(self.updates),
            "progress/agent_steps": float(self.agent_steps),
        })
        _, b0, b1 = self.game_blocks(rollout.env_rewards.shape[1])[0]  # the main's games
        metrics.update(self.rollout_stats(rollout if not self.league_roles
                                          else rollout.select_games(b0, b1)))
        metrics.update(self.collector.metrics())
        if isinstance(self.collector, ActorCollector) and self.pools:
            metrics.update(pool_metrics(self.pools))
        self.last_metrics = metrics
        if self.logger is not None and self.updates % self.cfg.trainer.log_every == 0:
            self.logger.log_metrics(metrics, step=self.updates)
        # for the progress bar and checkpoint file names
        self.log("updates", float(self.updates), prog_bar=False, logger=False, batch_size=1)
        self.log("agent_steps_per_s", metrics["perf/agent_steps_per_s"], prog_bar=False,
                 logger=False, batch_size=1)
        if self.updates >= self.cfg.trainer.max_updates:
            self.trainer.should_stop = True
        self._check_progress(metrics)

    def _check_progress(self, metrics: dict[str, float]) -> None:
        """Stop a run that cannot learn: when every optimiser step of several updates in a
        row was skipped (nan/inf losses or gradients, e.g. from ppo.ent_coef or a reward
        weight), going on would only burn time while the weights stay as they are."""
        if metrics.get("loss/optimizer_steps", 0.0) > 0:
            self._updates_without_step = 0
            return
        self._updates_without_step += 1
        if self._updates_without_step >= MAX_UPDATES_WITHOUT_STEP:
            raise TrainingDiverged(
                f"the last {self._updates_without_step} updates took no optimiser step: every "
                f"loss or gradient was nan/inf (loss/nonfinite_losses "
                f"{metrics.get('loss/nonfinite_losses', 0):.0f}, rollout skipped "
                f"{metrics.get('loss/skipped_updates', 0):.0f}); check the ppo.* and reward.* "
                f"settings and the game's observations and rewards; checkpoints before this "
                f"point are unchanged")

    def ppo_update(self, ro: Rollout) -> dict[str, float]:
        """One PPO update on rollout `ro` (arena/learn/update.py), with this module's
        optimiser, Lightning's backward and, under DDP, the all-reduce over ranks. With
        exploiters, each learning agent is updated on its own block of games; the main's
        metrics keep their names, an exploiter's are under `exploiters/<name>/`."""
        spirit = self.team_spirit()
        shaped = self.shaper(ro.env_rewards, ro.events, ro.alive, ro.ticks, spirit)
        blocks = self.game_blocks(ro.env_rewards.shape[1])
        metrics: dict[str, float] = {}
        for agent, b0, b1 in blocks:
            part = ro if len(blocks) == 1 else ro.select_games(b0, b1)
            policies, norms = self.agent_networks(agent)
            m = ppo_update(
                self.groups, policies, norms, part, shaped["total"][:, b0:b1],
                self.optimizers(), ppo=self.cfg.ppo, gamma=self.gamma(),
                lr=self.learning_rate(), generator=self._mb_generator, device=self.device,
                backward=self.manual_backward,
                reduce=all_reduce_sum if world_size() > 1 else None)
            if agent == MAIN:
                metrics.update(m)
            else:
                metrics.update({f"exploiters/{agent}/{k}": v for k, v in m.items()})
        if metrics.get("loss/skipped_updates"):
            return metrics
        metrics["train/team_spirit"] = spirit
        active = max(ro.active.sum(), 1)
        for name, comp in shaped.items():
            metrics[f"reward/{name}"] = float(comp.sum() / active)
        return metrics

    def rollout_stats(self, ro: Rollout) -> dict[str, float]:
        out: dict[str, float] = {}
        active = max(int(ro.active.sum()), 1)
        for k, name in enumerate(self.event_names):
            out[f"events/{name}_per_agent_step"] = float(ro.events[..., k].sum() / active)
        w, lengths = ro.episodes["winners"], ro.episodes["lengths"]
        out["episode/finished"] = float(len(w))
        if len(w):
            out["episode/length"] = float(lengths.mean())
            out["episode/draw_rate"] = float((w < 0).mean())
            for t, team in enumerate(self.team_names):
                out[f"episode/{team}_win_rate"] = float((w == t).mean())
        return out

    # ---- checkpoints ---------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["arena"] = {
            "updates": self.updates,
            "agent_steps": self.agent_steps,
            "signature": self.signature,
            "torch_rng": torch.get_rng_state(),
            "minibatch_rng": self._mb_generator.get_state(),
            "collector_rng": (self.collector.generator.get_state()
                              if isinstance(self.collector, Collector) else None),
            "league": {role: pool.state_dict() for role, pool in self.pools.items()},
            "exploiters": [e.state_dict() for e in self.league_roles],
            "ratings": self.ratings.state_dict(),
            "surgeries": self.surgeries,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("arena")
        if not isinstance(state, dict) or "signature" not in state:
            raise ValueError("not an Arena training checkpoint (no 'arena' section)")
        if state["signature"] != self.signature:
            raise ValueError(
                f"checkpoint was trained on {state['signature']}, but this run is "
                f"{self.signature}: game, agents or spaces differ")
        self.updates = int(state["updates"])
        self.agent_steps = int(state["agent_steps"])
        self.surgeries = list(state.get("surgeries", []))  # arena/learn/surgery.py: the record
        torch.set_rng_state(state["torch_rng"])
        self._mb_generator.set_state(state["minibatch_rng"])
        self._pending_collector_rng = state.get("collector_rng")
        if "ratings" in state:
            self.ratings.load_state_dict(state["ratings"])
        saved = {e["name"]: e for e in state.get("exploiters", [])}
        for e in self.league_roles:
            if e.name in saved:
                e.load_state_dict(saved[e.name])
        for role, pool_state in state.get("league", {}).items():
            if role in self.pools:  # back to the pool as it was at this checkpoint
                self.pools[role].load_state_dict(pool_state)

    def on_train_start(self) -> None:
        # a resumed run continues the action sampler's stream and starts fresh games
        pending = getattr(self, "_pending_collector_rng", None)
        if pending is not None and isinstance(self.collector, Collector):
            self.collector.generator.set_state(pending)
            self.collector.seed += 104729 * self.updates
        self._pending_collector_rng = None


def _identity(x):
    return x


def _reachable(endpoint: str) -> str:
    """An endpoint other hosts can use (arena.scale.distributed.reachable_endpoint)."""
    from arena.scale.distributed import reachable_endpoint

    return reachable_endpoint(endpoint)



