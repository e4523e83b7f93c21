"""The batched MOBA core: B games stepped at once, for training at speed.

`MobaCore` owns the structure-of-arrays state and preallocated output buffers; `step`
is one numba call for the whole batch. The PettingZoo `MobaEnv` is a thin view over a
core with B=1. Heroes are ordered radiant_0..radiant_{n-1}, dire_0..dire_{n-1}.

The arrays returned by `reset`/`step` are the core's own buffers, overwritten by the next
call: copy them if you keep them.

`threads=k` (k > 1) runs the games on k threads: the batch is split into k contiguous
chunks of games (fewer when B < k), each chunk runs its games in order on its own scratch
rows, and every result is bit-identical to `threads=1` for the same seeds and actions
(each game reads only its own state and random stream). numba cannot run more threads than
`numba.config.NUMBA_NUM_THREADS` (set by the `NUMBA_NUM_THREADS` environment variable
before numba is imported; the number of CPUs by default): a larger request is clamped to it
(`core.numba_threads`), the chunks stay as asked and the results are unchanged.

numba's threading layer is numba's choice (OpenMP where libgomp is found, else workqueue;
`NUMBA_THREADING_LAYER` picks one). Measured on the 2-core dev VMs, 3v3 at B=256: idle, 2
threads step 2.6x as fast as 1 with OpenMP (its threads spin between calls) but only 1.35x
with workqueue (its threads sleep, and waking a VM's idle CPU takes hundreds of us). On a
machine busier than its cores, OpenMP's spinning stalls each call for a scheduler time
slice: at load 7, 2-thread steps took several times as long as 1-thread ones. There, keep
`threads=1`, or set `OMP_WAIT_POLICY=passive` before libgomp is loaded (numba or torch
loads it), or use workqueue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from games.actions import as_action_batch
from games.moba import kernels as K
from games.moba.config import MobaConfig
from games.moba.layout import (
    EVENT_NAMES,
    H_ITEMS,
    NUM_EVENTS,
    NUM_HERO_F,
    NUM_ITEMS,
    NUM_UNIT_F,
    NUM_UNIT_I,
    TEAM_NAMES,
    MobaLayout,
    level_xp_table,
)


@dataclass
class StepResult:
    """What one batched step returns (views of the core's buffers).

    obs: (B, H, obs_dim) float32; action_mask: (B, H, num_actions) int8;
    rewards: (B, H) float32 (the outcome, +1/-1/0, on the last step only);
    dones: (B,) bool; winners: (B,) int8 (0 radiant, 1 dire, -1 draw; valid where done);
    lengths: (B,) int32 (episode length in ticks; valid where done);
    events: (B, H, num_events) float32, this step's counters, names in `EVENT_NAMES`.
    """

    obs: np.ndarray
    action_mask: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    winners: np.ndarray
    lengths: np.ndarray
    events: np.ndarray


class MobaCore:
    """B MOBA games over structure-of-arrays state, stepped by numba kernels.

    With `autoreset=True` (the default, for training) a game that ends is restarted in the
    same call: `dones[b]` is True, `rewards` carry the outcome, and `obs[b]` is already the
    first observation of the next episode, seeded from the game's own random stream.

    `threads`: numba threads that step, reset and observe the games (and sample random
    actions); see the module docstring. `threads=1` runs the serial kernels.
    """

    event_names = EVENT_NAMES

    def __init__(self, config: MobaConfig | None = None, num_games: int = 1,
                 autoreset: bool = True, threads: int = 1, **kwargs) -> None:
        if config is None:
            from games.moba.config import make_config

            config = make_config(**kwargs)
        elif kwargs:
            raise TypeError("MobaCore: pass either a MobaConfig or keyword options, not both")
        if not isinstance(num_games, (int, np.integer)) or isinstance(num_games, bool) \
                or num_games < 1:
            raise ValueError(f"MobaCore: num_games must be a positive int, got {num_games!r}")
        if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"MobaCore: threads must be a positive int, got {threads!r}")
        self.config = config
        self.layout = lay = MobaLayout(config)
        self.num_games = B = int(num_games)
        self.autoreset = bool(autoreset)
        H, U = lay.num_heroes, lay.num_units
        self.num_heroes = H
        self.agent_names = [f"{TEAM_NAMES[h // config.team_size]}_{h % config.team_size}"
                            for h in range(H)]
        # state
        self.unit_f = np.zeros((NUM_UNIT_F, B, U), np.float32)
        self.unit_i = np.zeros((NUM_UNIT_I, B, U), np.int32)
        self.hero_f = np.zeros((NUM_HERO_F, B, H), np.float32)
        self.hero_i = np.zeros((H_ITEMS + NUM_ITEMS, B, H), np.int32)
        self.dmg_tick = np.zeros((B, H, H), np.int32)
        self.game_i = np.zeros((K.NUM_GAME_I, B), np.int32)
        self.rng = np.zeros(B, np.uint64)
        # static tables
        self.params = lay.params()
        self.fountains = lay.fountains()
        self.waypoints = lay.waypoints()
        self.tower_pos = lay.tower_positions()
        self.items = lay.item_table()
        self.xp_table = level_xp_table(config.max_level)
        # scratch and outputs
        self.threads = int(threads)
        self.numba_threads = min(self.threads, numba.config.NUMBA_NUM_THREADS)
        if self.threads == 1:
            self.scratch_f = np.zeros((K.NUM_SCRATCH_F, U), np.float32)
            self.scratch_i = np.zeros((K.NUM_SCRATCH_I, U), np.int32)
        else:
            # one scratch per chunk of games; rows padded to whole 64-byte lines plus one
            # spare row, so two chunks never write to the same cache line
            chunks, width = min(self.threads, B), -(-U // 16) * 16
            self.scratch_f = np.zeros((chunks, K.NUM_SCRATCH_F + 1, width), np.float32)
            self.scratch_i = np.zeros((chunks, K.NUM_SCRATCH_I + 1, width), np.int32)
        self.vis = np.zeros((2, B, U), np.uint8)
        self.ent_idx = np.full((B, H, config.num_visible), -1, np.int32)
        self.obs = np.zeros((B, H, lay.obs_dim), np.float32)
        self.action_mask = np.zeros((B, H, lay.num_actions), np.int8)
        self.rewards = np.zeros((B, H), np.float32)
        self.dones = np.zeros(B, np.uint8)
        self.winners = np.full(B, -1, np.int8)
        self.lengths = np.zeros(B, np.int32)
        self.events = np.zeros((B, H, NUM_EVENTS), np.float32)
        self._actions = np.zeros((B, H), np.int64)
        self._all_games = np.arange(B, dtype=np.int64)
        self._reset_called = False

    # ------------------------------------------------------------------------------------
    @property
    def obs_dim(self) -> int:
        return self.layout.obs_dim

    @property
    def num_actions(self) -> int:
        return self.layout.num_actions

    @property
    def tick(self) -> np.ndarray:
        return self.game_i[K.G_TICK]

    def _run(self, serial, parallel, *args) -> None:
        """One kernel call: the serial kernel, or the chunked one on `numba_threads`
        threads (the caller's numba thread count is restored after)."""
        if self.threads == 1:
            serial(*args)
            return
        before = numba.get_num_threads()
        if before == self.numba_threads:
            parallel(*args)
            return
        numba.set_num_threads(self.numba_threads)
        try:
            parallel(*args)
        finally:
            numba.set_num_threads(before)

    def _result(self) -> StepResult:
        return StepResult(self.obs, self.action_mask, self.rewards, self.dones.view(bool),
                          self.winners, self.lengths, self.events)

    def reset(self, seed: int | np.ndarray | None = None,
              games: np.ndarray | None = None) -> StepResult:
        """Start new games. `seed`: one int (game b gets seed + b), one seed per game, or
        None for fresh entropy. `games`: indices to reset (default all)."""
        idx = self._all_games if games is None else np.asarray(games, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_games):
            raise ValueError(f"MobaCore.reset: game indices must lie in 0..{self.num_games - 1}")
        if seed is None:
            seeds = np.random.SeedSequence().generate_state(idx.size, np.uint64)
        elif np.ndim(seed) == 0:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise TypeError(f"MobaCore.reset: seed must be an int, got {seed!r}")
            seeds = (np.uint64(int(seed) % 2**64) + idx.astype(np.uint64)).astype(np.uint64)
        else:
            seeds = np.asarray(seed).astype(np.uint64).ravel()
            if seeds.size != idx.size:
                raise ValueError(f"MobaCore.reset: got {seeds.size} seeds for {idx.size} games")
        K.seed_states(seeds, self.rng, idx)
        args = (idx, self.unit_f, self.unit_i, self.hero_f, self.hero_i, self.dmg_tick,
                self.game_i, self.rng, self.params, self.fountains, self.waypoints,
                self.tower_pos, self.items, self.xp_table, self.scratch_f, self.scratch_i,
                self.vis, self.ent_idx, self.obs, self.action_mask)
        if self.threads > 1 and idx is not self._all_games and np.unique(idx).size != idx.size:
            # a game listed twice is reset twice, in order: serially, on the first scratch
            K.reset_batch(*args[:14], self.scratch_f[0], self.scratch_i[0], *args[16:])
        else:
            self._run(K.reset_batch, K.reset_batch_par, *args)
        self.rewards[idx] = 0.0
        self.dones[idx] = 0
        self.events[idx] = 0.0
        self._reset_called = True
        return self._result()

    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every game one tick. `actions`: (B, H) integer array.

        An action that the current mask forbids (or out of range) is replaced by a no-op
        and counted in the `illegal_actions` event of that hero."""
        if not self._reset_called:
            raise RuntimeError("MobaCore.step called before reset()")
        actions = as_action_batch("MobaCore", actions, (self.num_games, self.num_heroes),
                                  "(num_games, num_heroes)")
        if actions.dtype != np.int64:
            np.copyto(self._actions, actions, casting="unsafe")
            actions = self._actions
        self._run(K.step_batch, K.step_batch_par, actions, self.unit_f, self.unit_i,
                  self.hero_f, self.hero_i, self.dmg_tick, self.game_i, self.rng, self.params,
                  self.fountains, self.waypoints, self.tower_pos, self.items, self.xp_table,
                  self.scratch_f, self.scratch_i, self.vis, self.ent_idx, self.obs,
                  self.action_mask, self.rewards, self.dones, self.events, self.winners,
                  self.lengths, self.autoreset)
        return self._result()

    def observe(self) -> StepResult:
        """Recompute vision, observations and masks from the current state (for tests and
        tools that edit the state)."""
        self._run(K.observe_batch, K.observe_batch_par, self.unit_f, self.unit_i,
                  self.hero_f, self.hero_i, self.game_i, self.params, self.fountains,
                  self.waypoints, self.items, self.xp_table, self.scratch_f, self.scratch_i,
                  self.vis, self.ent_idx, self.obs, self.action_mask)
        return self._result()

    def sample_actions(self, rng_state: np.ndarray) -> np.ndarray:
        """Uniformly random legal actions, drawn from the caller's xorshift state (B,) uint64."""
        out = np.zeros((self.num_games, self.num_heroes), np.int64)
        if self.threads == 1:
            K.sample_legal(self.action_mask, rng_state, out)
        else:
            self._run(None, K.sample_legal_par, self.action_mask, rng_state, out,
                      self.scratch_f.shape[0])
        return out

    def new_rng_state(self, seed: int) -> np.ndarray:
        """A (B,) xorshift state for `sample_actions`, derived from `seed`."""
        state = np.zeros(self.num_games, np.uint64)
        seeds = (np.uint64(seed % 2**64) + np.arange(self.num_games, dtype=np.uint64))
        K.seed_states(seeds ^ np.uint64(0xA5A5A5A5A5A5A5A5), state, self._all_games)
        return state

    # ---- state snapshots (tests, replays) --------------------------------------------------
    _STATE = ("unit_f", "unit_i", "hero_f", "hero_i", "dmg_tick", "game_i", "rng")

    def get_state(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).copy() for name in self._STATE}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for name in self._STATE:
            np.copyto(getattr(self, name), state[name])
        self._reset_called = True

    def net_worth(self) -> np.ndarray:
        """(B, H) gold plus the value of items held."""
        items = self.hero_i[H_ITEMS:H_ITEMS + NUM_ITEMS]  # (I, B, H)
        return self.hero_f[0] + np.tensordot(self.items[:, 0], items, axes=1)
