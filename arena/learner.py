"""The Lightning learner: one LightningModule owns the PPO update of every policy group.

Each training step takes one rollout from the collector (no prefetch: the `dataloader_iter`
step flavour pulls the next rollout only after the previous update, so PPO always trains
on data from the current policy), shapes its rewards, computes GAE with value
normalisation, and runs K epochs over minibatches of whole chunks, replaying each chunk
from its stored LSTM state. The Trainer owns devices, precision, checkpoints, loggers and
the progress bar.
"""

from __future__ import annotations

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
from agents.policy import EntityLayout, RecurrentPolicy
from agents.ppo import chunk_minibatches, compute_gae, explained_variance, ppo_loss
from arena.actors import (
    ActorCollector, ActorService, ControlClient, PoolMirror, RolloutSpec, sync_league,
)
from arena.config import Config, config_from_dict, to_dict
from arena.transport import CurveKeys
from arena.distributed import all_reduce_sum, broadcast_text, world_size
from arena.opponents import OpponentManager, pool_metrics
from arena.rollout import Collector, PolicyGroup, Rollout, policy_groups
from games.vector import RoleSpec, make_vec
from league.pool import OpponentPool
from games.registry import bot_anchors
from league.ratings import RatingTable
from league.schedule import gamma_at
from league.shaping import Shaper, team_spirit_at


MAX_UPDATES_WITHOUT_STEP = 3  # updates in a row with every optimiser step skipped: stop


class TrainingDiverged(RuntimeError):
    """Every optimiser step of several updates in a row was skipped (non-finite losses)."""


def build_policy(role: RoleSpec, cfg: Config) -> RecurrentPolicy:
    m = cfg.model
    entity_layout = None
    if m.encoder == "entity" or (m.encoder == "auto" and role.entity_layout is not None):
        if role.entity_layout is None:
            raise ValueError(f"model.encoder=entity needs an entity observation layout; role "
                             f"{role.name!r} of game {cfg.game.name!r} declares none (flat "
                             f"observations; a game declares one as `entity_layout`)")
        entity_layout = EntityLayout(*role.entity_layout)
    return RecurrentPolicy(role.obs_dim, role.num_actions, hidden=m.hidden,
                           lstm_hidden=m.lstm_hidden, use_lstm=m.use_lstm,
                           entity_layout=entity_layout, normalize_obs=m.normalize_obs)


def pool_settings(cfg: Config) -> dict[str, Any]:
    """OpponentPool keyword arguments from the config's league section."""
    lg = cfg.league
    return {"latest_prob": lg.latest_prob, "sampler": lg.sampler, "eta": lg.eta,
            "pfsp_weighting": lg.pfsp_weighting, "pfsp_p": lg.pfsp_p,
            "max_snapshots": lg.max_snapshots}


def group_module_key(key: str) -> str:
    """ModuleDict keys may not contain dots."""
    return key.replace(".", "__")


class _RolloutStream(IterableDataset):
    def __init__(self, learner: PPOLearner) -> None:
        self.learner = learner

    def __iter__(self) -> Iterator[Rollout]:
        while True:
            self.learner.sync_league_mirrors()
            yield self.learner.collector.collect()


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
        self.shaper = Shaper(self.event_names, self.slot_team, env_weight=cfg.reward.env_weight,
                             weights=dict(cfg.reward.weights), zero_sum=cfg.reward.zero_sum,
                             time_decay_ticks=cfg.reward.time_decay_ticks)
        self.updates = 0
        self.agent_steps = 0
        self.collector: Collector | None = None
        self._mb_generator = torch.Generator().manual_seed(cfg.run.seed + 1)
        self._t_start = time.perf_counter()
        self._steps_at_start = 0
        self.last_metrics: dict[str, float] = {}
        self.win_rates: dict[str, float] = {}  # latest evaluation against scripted bots
        self._updates_at_start = 0
        self.evaluator = None  # set by arena.train (scripted-bot evaluation)
        self.watcher = None  # set by arena.train (match GIFs in TensorBoard)
        self.run_dir: Path | None = None  # set by arena.train; the league pool lives there
        self.pools: dict[str, OpponentPool] = {}
        self.service = None  # arena.actors.ActorService: actors, or the league for other ranks
        self._league_client = None  # ranks > 0: rank 0's control socket, for their pool mirrors
        # the latest policy at each evaluation, on the scale of the game's bots
        self.ratings = RatingTable(anchors=bot_anchors(cfg.game.name))
        self._updates_without_step = 0

    # ---- Lightning plumbing -------------------------------------------------------------
    def policy_for(self, key: str) -> RecurrentPolicy:
        return self.policies[group_module_key(key)]

    def setup(self, stage: str) -> None:
        cfg = self.cfg
        if cfg.trainer.num_threads:
            torch.set_num_threads(cfg.trainer.num_threads)
        rank, ranks = self.global_rank, world_size()
        a = cfg.actors
        use_actors = a.num_workers > 0 or a.listen
        league = cfg.league.enabled and self.run_dir is not None
        games = a.num_envs or cfg.game.num_envs
        # Rank 0 owns the league on disk; actors and other ranks reach it over its control
        # socket (arena/actors.py), whose address every rank learns by broadcast.
        league_endpoint = ""
        need = a.rollouts_per_update or max(a.num_workers, 1)
        per_version = -(-need // max(a.num_workers, 1))  # each actor's share of an update
        if rank == 0 and (use_actors or (league and ranks > 1)):
            self.service = ActorService(to_dict(cfg), rank, self.run_dir / "league" if league else None,
                                        None, games, per_version)
            league_endpoint = _reachable(self.service.endpoint)
        if league and ranks > 1:
            league_endpoint = broadcast_text(league_endpoint)
        if rank > 0 and use_actors:
            self.service = ActorService(to_dict(cfg), rank, None,
                                        league_endpoint if league else None, games, per_version)
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
        vec = make_vec(cfg.game.name, cfg.game.num_envs, **cfg.game.options)
        opponents = None
        if league:
            opponents = OpponentManager(
                vec, self.groups, self.pools,
                build=lambda key: build_policy(self._group(key).role, cfg),
                module_key=group_module_key, seed=cfg.run.seed + 31 * rank + 5,
                device=self.device, bots=list(cfg.league.bots), bot_prob=cfg.league.bot_prob,
                game=cfg.game.name)
        self.collector = Collector(
            vec, {g.key: self.policy_for(g.key) for g in self.groups}, self.groups,
            chunk_len=cfg.ppo.chunk_len, num_chunks=cfg.ppo.chunks_per_update,
            seed=cfg.run.seed + 7919 * rank, device=self.device, opponents=opponents)

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
        """One pool of past snapshots per role (both MOBA teams share the role "hero")."""
        return {role: OpponentPool.open(directory / role, **pool_settings(self.cfg))
                for role in sorted({g.role.name for g in self.groups})}

    def snapshot(self) -> None:
        """Freeze the current weights of every role into its pool."""
        state = self.state_dict()
        for role, pool in self.pools.items():
            keys = tuple(f"policies.{group_module_key(g.key)}." for g in self.groups
                         if g.role.name == role)
            weights = {k: v.detach().cpu().clone() for k, v in state.items() if k.startswith(keys)}
            pool.add(weights, update=self.updates, agent_steps=self.agent_steps)

    def teardown(self, stage: str) -> None:
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
        return torch.optim.Adam(self.parameters(), lr=self.cfg.ppo.lr, eps=1e-5)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_RolloutStream(self), batch_size=None, collate_fn=_identity)

    def on_fit_start(self) -> None:
        self.collector.device = self.device
        self.serve_league()
        self._t_start = time.perf_counter()
        self._steps_at_start = self.agent_steps
        self._updates_at_start = self.updates

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
        rollout, _, _ = next(dataloader_iter)
        t_learn = time.perf_counter()
        metrics = self.ppo_update(rollout)
        learn_seconds = time.perf_counter() - t_learn
        self.updates += 1
        steps = rollout.agent_steps
        if world_size() > 1:  # counters are global: every rank's agent-steps
            steps = int(all_reduce_sum(torch.tensor([steps], dtype=torch.float64,
                                                    device=self.device)).item())
        self.agent_steps += steps
        if isinstance(self.collector, ActorCollector):
            self.collector.publish()  # actors switch to the new weights as soon as possible
            metrics["actors/sample_reuse"] = metrics["loss/epochs"]
        if self.pools and self.global_rank == 0:
            if self.updates % self.cfg.league.snapshot_every == 0:
                self.snapshot()
            self.serve_league()
            for pool in self.pools.values():
                pool.save_index()  # results against snapshots, on disk once per update
        elapsed = time.perf_counter() - self._t_start
        metrics.update({
            "perf/collect_agent_steps_per_s": steps / max(rollout.seconds, 1e-9),
            "perf/learn_agent_steps_per_s": steps / max(learn_seconds, 1e-9),
            "perf/agent_steps_per_s": (self.agent_steps - self._steps_at_start) / max(elapsed, 1e-9),
            "perf/collect_seconds": rollout.seconds,
            "perf/learn_seconds": learn_seconds,
            "progress/updates": float(self.updates),
            "progress/agent_steps": float(self.agent_steps),
        })
        metrics.update(self.rollout_stats(rollout))
        metrics.update(self.collector.metrics())
        if isinstance(self.collector, ActorCollector) and self.pools:
            metrics.update(pool_metrics(self.pools))
        if self.evaluator is not None and self.cfg.eval.every and \
                self.updates % self.cfg.eval.every == 0:
            self.win_rates = self.evaluator(self)
            metrics.update(self.win_rates)
        if self.watcher is not None and self.global_rank == 0 and \
                self.updates % self.cfg.watch.every == 0:
            metrics.update(self.watcher(self))
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
        p = self.cfg.ppo
        dev = self.device
        gamma = self.gamma()
        # under DDP: moments and gradients over all ranks (arena/distributed.py)
        reduce = all_reduce_sum if world_size() > 1 else None
        shaped = self.shaper(ro.env_rewards, ro.events, ro.alive, ro.ticks, self.team_spirit())
        # A rollout holding nan/inf (a broken game, a bad actor) would poison the normalisers
        # and the weights: skip the whole update, on every rank alike, and log it.
        finite = torch.stack([torch.isfinite(d[k]).all() for d in ro.groups.values()
                              for k in ("obs", "values", "logprobs", "last_values", "final_values")]).all()
        bad = (~finite).double().reshape(1) + float(not np.isfinite(shaped["total"]).all())
        if float((reduce(bad) if reduce is not None else bad)[0]) > 0:  # one host sync
            return {"loss/skipped_updates": 1.0, "loss/epochs": 0.0, "loss/optimizer_steps": 0.0,
                    "train/gamma": float(gamma),
                    "train/learning_rate": self.learning_rate()}
        L_, B, _ = ro.env_rewards.shape
        T = p.chunk_len
        K = L_ // T
        data: dict[str, dict[str, torch.Tensor]] = {}
        ev_pred, ev_true = [], []
        for g in self.groups:
            d = ro.groups[g.key]
            n = B * len(g.slots)
            vn = self.value_norms[group_module_key(g.key)]
            rewards = torch.from_numpy(
                np.ascontiguousarray(shaped["total"][:, :, list(g.slots)]).reshape(L_, n)).to(dev)
            values, last = d["values"], d["last_values"]
            raw_values = vn.denormalize(values) if p.value_norm else values
            raw_last = vn.denormalize(last) if p.value_norm else last
            final = d["final_values"]
            raw_final = torch.where(d["truncated"], vn.denormalize(final), 0.0) \
                if p.value_norm else final
            valid = d["valid"]
            advantages, returns = compute_gae(rewards, raw_values, d["agent_dones"], raw_last,
                                              gamma, p.gae_lambda, valid=valid,
                                              final_values=raw_final)
            if p.value_norm:
                vn.update(returns[valid], reduce)
                targets = vn.normalize(returns)
            else:
                targets = returns
            ev_pred.append(values[valid])
            ev_true.append(targets[valid])

            def seq(x: torch.Tensor) -> torch.Tensor:
                """(L, n, ...) -> (T, K*n, ...): chunks as columns."""
                rest = x.shape[2:]
                return x.reshape(K, T, n, *rest).transpose(0, 1).reshape(T, K * n, *rest)

            data[g.key] = {
                "obs": seq(d["obs"]), "action_mask": seq(d["action_mask"]),
                "actions": seq(d["actions"]), "logprobs": seq(d["logprobs"]),
                "values": seq(values), "advantages": seq(advantages), "targets": seq(targets),
                "episode_starts": seq(d["episode_starts"]), "valid": seq(valid),
                "h0": d["state_h"].reshape(K * n, -1), "c0": d["state_c"].reshape(K * n, -1),
            }

        opt = self.optimizers()
        lr = self.learning_rate()
        for group in opt.param_groups:
            group["lr"] = lr
        params = [q for q in self.parameters() if q.requires_grad]
        sums: dict[str, float] = {}
        count = stepped = nonfinite_losses = 0
        epochs_done = 0
        for _ in range(p.update_epochs):
            perms = {k: chunk_minibatches(v["h0"].shape[0], p.num_minibatches, self._mb_generator)
                     for k, v in data.items()}
            epoch_kl = []
            for i in range(p.num_minibatches):
                total = torch.zeros((), device=dev)
                for g in self.groups:
                    d = data[g.key]
                    idx = perms[g.key][i].to(dev)
                    if idx.numel() == 0:
                        continue
                    mb = {k: (v[idx] if k in ("h0", "c0") else v[:, idx]) for k, v in d.items()}
                    new_logprobs, entropy, new_values = self.policy_for(g.key).evaluate_actions(
                        mb["obs"], (mb["h0"], mb["c0"]), mb["episode_starts"],
                        mb["action_mask"], mb["actions"])
                    loss, m = ppo_loss(
                        new_logprobs, mb["logprobs"], entropy, new_values, mb["values"],
                        mb["advantages"], mb["targets"], mb["valid"], clip_coef=p.clip_coef,
                        clip_vloss=p.clip_vloss, vf_clip_coef=p.vf_clip_coef, ent_coef=p.ent_coef,
                        vf_coef=p.vf_coef, norm_adv=p.norm_adv, reduce=reduce)
                    total = total + loss
                    for k, v in m.items():
                        sums[k] = sums.get(k, 0.0) + v / len(self.groups)
                    epoch_kl.append(m["approx_kl"])
                opt.zero_grad()
                nonfinite_losses += int(not bool(torch.isfinite(total)))
                # Every rank runs its backward (Lightning prepares DDP's reducer before each
                # one, so gradients are averaged at every step); a nan/inf loss on any rank
                # makes the averaged gradient non-finite everywhere, so all ranks skip alike.
                self.manual_backward(total)
                grad_norm = torch.nn.utils.clip_grad_norm_(params, p.max_grad_norm)
                if not torch.isfinite(grad_norm):
                    opt.zero_grad()  # a non-finite loss or gradient never reaches the weights
                    sums["skipped_steps"] = sums.get("skipped_steps", 0.0) + 1.0
                else:
                    opt.step()
                    sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(grad_norm)
                    stepped += 1
                count += 1
            epochs_done += 1
            if p.target_kl is not None and epoch_kl:
                kl = torch.tensor([float(np.sum(epoch_kl)), float(len(epoch_kl))], dtype=torch.float64)
                kl = all_reduce_sum(kl.to(dev)) if reduce is not None else kl
                if float(kl[0] / kl[1]) > p.target_kl:  # the same decision on every rank
                    break
        # observation statistics move only between updates (see RecurrentPolicy.update_obs_norm)
        for g in self.groups:
            d = ro.groups[g.key]
            self.policy_for(g.key).update_obs_norm(d["obs"], d["valid"], reduce)

        metrics = {f"loss/{k}": v / max(count, 1) for k, v in sums.items()
                   if k not in ("skipped_steps", "grad_norm")}
        if stepped:
            metrics["loss/grad_norm"] = sums["grad_norm"] / stepped
        metrics["loss/skipped_steps"] = sums.get("skipped_steps", 0.0)
        metrics["loss/optimizer_steps"] = float(stepped)
        metrics["loss/skipped_updates"] = 0.0
        metrics["loss/nonfinite_losses"] = float(nonfinite_losses)
        metrics["loss/explained_variance"] = explained_variance(torch.cat(ev_pred), torch.cat(ev_true))
        metrics["loss/epochs"] = float(epochs_done)
        metrics["train/learning_rate"] = lr
        metrics["train/gamma"] = float(gamma)
        metrics["train/team_spirit"] = self.team_spirit()
        active = ro.active.sum()
        for name, comp in shaped.items():
            metrics[f"reward/{name}"] = float(comp.sum() / max(active, 1))
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
            "ratings": self.ratings.state_dict(),
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
        torch.set_rng_state(state["torch_rng"])
        self._mb_generator.set_state(state["minibatch_rng"])
        self._pending_collector_rng = state.get("collector_rng")
        if "ratings" in state:
            self.ratings.load_state_dict(state["ratings"])
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
    """An endpoint other hosts can use: a wildcard bind is named by this host's address as
    the launcher knows it (MASTER_ADDR under torchrun/SLURM), else by its hostname."""
    import os
    import socket

    if "0.0.0.0" not in endpoint:
        return endpoint
    return endpoint.replace("0.0.0.0", os.environ.get("MASTER_ADDR") or socket.gethostname())



