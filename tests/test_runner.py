"""The policy runner (arena/play/runner.py): per-row LSTM state, masks, seeded sampling, and
`play_against` on connect four."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.policy import RecurrentPolicy
from arena.learn.networks import policy_groups
from arena.play.runner import BotSide, PolicyRunner, play_against
from games.bots import ConnectFourBot, RandomBot
from games.vector import make_vec

CONNECT_FOUR = "pettingzoo:pettingzoo.classic.connect_four_v3:env"


def connect_four(num_games: int):
    vec = make_vec(CONNECT_FOUR, num_games)
    (group,) = policy_groups(vec, per_agent_weights=False)  # both players share one role
    return vec, group


def small_policy(seed: int = 0, sharp: bool = False, column: int | None = None) -> RecurrentPolicy:
    """Hidden 16. `sharp`: large policy-head weights, so the chosen action follows the LSTM
    state closely; `column`: a policy that wants that column above all (when legal)."""
    torch.manual_seed(seed)
    policy = RecurrentPolicy(84, 7, hidden=16, lstm_hidden=16, normalize_obs=False)
    with torch.no_grad():
        if sharp:
            policy.actor.weight.mul_(1000.0)
        if column is not None:
            policy.actor.weight.zero_()
            policy.actor.bias.zero_()
            policy.actor.bias[column] = 50.0
    return policy.eval()


class ColumnBot:
    """Plays column `c` while it is legal, else the first legal column."""

    def __init__(self, c: int) -> None:
        self.c = c

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask, bool)
        return np.where(mask[:, self.c], self.c, mask.argmax(axis=1)).astype(np.int64)


class Recording:
    """A side of a match that remembers every action it wrote."""

    def __init__(self, side) -> None:
        self.side, self.actions = side, []

    def reset(self, mine=None) -> None:
        self.side.reset(mine)

    def act(self, step, episode_start, out) -> None:
        self.side.act(step, episode_start, out)
        self.actions.append(out.copy())


def episode_starts(alive_before: np.ndarray, step) -> np.ndarray:
    agent_done = alive_before & (step.dones[:, None] | ~step.alive)
    return agent_done | (step.alive & ~alive_before)


# ---- PolicyRunner ---------------------------------------------------------------------------

def test_one_lstm_state_per_row_reset_exactly_at_episode_starts():
    B = 6
    vec, group = connect_four(B)
    policy = small_policy(sharp=True)
    runner = PolicyRunner(vec, [group], lambda key: policy, seed=0, deterministic=True)
    runner.reset()
    mover = RandomBot(seed=1)  # the games are played by a random bot, so they end at different times
    n = B * len(group.slots)
    state, stale = policy.initial_state(n), policy.initial_state(n)  # stale: never reset
    step = vec.reset(seed=0)
    alive = step.alive.copy()
    starts = np.ones((B, 2), bool)
    out = np.zeros((B, 2), np.int64)
    reset_steps, stale_differs = [], False
    for t in range(80):
        runner.act(step, starts, out)
        obs = torch.from_numpy(step.obs[group.role.name].reshape(n, -1).copy())
        mask = torch.from_numpy(step.action_mask[group.role.name].reshape(n, -1).copy())
        flat_starts = torch.from_numpy(starts.reshape(-1).copy())
        with torch.no_grad():
            logits, _, state = policy.step(obs, state, flat_starts, mask)
            stale_logits, _, stale = policy.step(obs, stale, torch.zeros_like(flat_starts), mask)
        assert np.array_equal(out.reshape(-1), logits.argmax(-1).numpy()), t
        stale_differs |= not np.array_equal(out.reshape(-1), stale_logits.argmax(-1).numpy())
        step = vec.step(mover.act(step.obs[group.role.name].reshape(n, -1),
                                  step.action_mask[group.role.name].reshape(n, -1)).reshape(B, 2))
        starts = episode_starts(alive, step)
        alive = step.alive.copy()
        if step.dones.any():
            reset_steps.append(tuple(np.flatnonzero(step.dones)))
    # games ended at different steps, so rows were reset one by one, never all at once
    assert len(reset_steps) >= 3 and all(len(r) < B for r in reset_steps)
    assert stale_differs  # the check above can tell a state that was not reset


def test_a_masked_action_is_never_chosen():
    B = 8
    vec, group = connect_four(B)
    policy = small_policy(column=3)  # wants the centre column, which fills up after 6 moves
    for deterministic in (False, True):
        runner = PolicyRunner(vec, [group], lambda key: policy, seed=0,
                              deterministic=deterministic)
        runner.reset()
        step = vec.reset(seed=0)
        alive = step.alive.copy()
        starts = np.ones((B, 2), bool)
        out = np.zeros((B, 2), np.int64)
        blocked_choices = 0
        for _ in range(60):
            mask = step.action_mask[group.role.name].copy()
            acting = step.next_active.copy()
            runner.act(step, starts, out)
            chosen_legal = np.take_along_axis(mask, out[..., None], axis=-1)[..., 0]
            assert chosen_legal[acting].all()
            blocked_choices += int((acting & ~mask[..., 3]).sum())
            step = vec.step(out)
            starts = episode_starts(alive, step)
            alive = step.alive.copy()
        assert blocked_choices > 20  # the favourite column was full, many times


def actions_of(runner_seed: int, steps: int = 30, disturb_global_rng: bool = False):
    B = 4
    vec, group = connect_four(B)
    policy = small_policy()
    runner = PolicyRunner(vec, [group], lambda key: policy, seed=runner_seed)
    runner.reset()
    step = vec.reset(seed=0)
    alive = step.alive.copy()
    starts = np.ones((B, 2), bool)
    out = np.zeros((B, 2), np.int64)
    played = []
    for t in range(steps):
        if disturb_global_rng:
            torch.manual_seed(1000 + t)
            torch.rand(17)
        runner.act(step, starts, out)
        played.append(out[step.next_active].copy())
        step = vec.step(out)
        starts = episode_starts(alive, step)
        alive = step.alive.copy()
    return np.concatenate(played)


def test_sampling_is_reproducible_per_seed_and_ignores_the_global_rng():
    first = actions_of(7)
    assert np.array_equal(first, actions_of(7, disturb_global_rng=True))
    assert not np.array_equal(first, actions_of(8))


# ---- play_against -----------------------------------------------------------------------------

def test_the_policy_plays_team_b_mod_t_and_each_game_scores_once():
    # both sides stack one column: whoever moves first completes four first
    B = 6
    vec, group = connect_four(B)
    policy = small_policy(column=0)
    runner = PolicyRunner(vec, [group], lambda key: policy, seed=0)
    bot = BotSide(vec, {group.role.name: ColumnBot(6)})
    scores = play_against(vec, runner, bot, seed=0)
    # game b: the policy is team b % 2, and team 0 (player_0) moves first
    assert scores.tolist() == [1.0, 0.0] * (B // 2)
    # the same with the sides swapped: now the bot is the side that scores
    assert play_against(vec, bot, runner, seed=0).tolist() == [1.0, 0.0] * (B // 2)


def test_a_game_needs_two_teams():
    vec = make_vec("memory", 2, num_cues=2, length=3, teams=1, team_size=1)
    (group,) = policy_groups(vec, per_agent_weights=False)
    policy = RecurrentPolicy(group.role.obs_dim, group.role.num_actions, hidden=16,
                             lstm_hidden=16)
    runner = PolicyRunner(vec, [group], lambda key: policy, seed=0)
    with pytest.raises(ValueError, match="at least two teams"):
        play_against(vec, runner, BotSide(vec, {group.role.name: RandomBot()}), seed=0)


def match(vec, group, bot, policy_seed=0, runner_seed=1, bot_seed=2, seed=3):
    policy = small_policy(seed=policy_seed)
    me = Recording(PolicyRunner(vec, [group], lambda key: policy, seed=runner_seed))
    them = Recording(BotSide(vec, {group.role.name: bot(bot_seed)}))
    scores = play_against(vec, me, them, seed=seed)
    return scores, np.stack(me.actions), np.stack(them.actions)


def test_play_against_is_deterministic_per_seed():
    vec, group = connect_four(20)
    scores, mine, theirs = match(vec, group, RandomBot)
    assert scores.shape == (20,) and set(scores.tolist()) <= {0.0, 0.5, 1.0}
    again = match(vec, group, RandomBot)
    assert np.array_equal(scores, again[0])
    assert np.array_equal(mine, again[1]) and np.array_equal(theirs, again[2])
    other = match(vec, group, RandomBot, runner_seed=11)
    assert other[1].shape != mine.shape or not np.array_equal(other[1], mine)


def test_scores_against_bots_of_known_strength():
    vec, group = connect_four(20)
    vs_bot, _, _ = match(vec, group, ConnectFourBot)
    vs_random, _, _ = match(vec, group, RandomBot)
    assert vs_bot.mean() < 0.3, vs_bot  # an untrained policy plays about at random
    assert 0.2 <= vs_random.mean() <= 0.8, vs_random
    strong = play_against(vec, BotSide(vec, {group.role.name: ConnectFourBot(0)}),
                          BotSide(vec, {group.role.name: RandomBot(1)}), seed=4)
    assert strong.mean() > 0.8, strong


# ---- games whose result is in --------------------------------------------------------------

class Hidden:
    """A side without `retire`: play_games asks it about every row to the end."""

    def __init__(self, side) -> None:
        self.side = side

    def reset(self, mine=None) -> None:
        self.side.reset(mine)

    def act(self, step, episode_start, out) -> None:
        self.side.act(step, episode_start, out)


class Counting:
    """A policy (or bot) that counts the rows it is asked to act for, per call."""

    def __init__(self, inner) -> None:
        self.inner, self.rows = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def step(self, obs, *args):
        self.rows.append(obs.shape[0])
        return self.inner.step(obs, *args)

    def act(self, obs, mask):
        self.rows.append(obs.shape[0])
        return self.inner.act(obs, mask)


def test_games_whose_result_is_in_are_no_longer_played_and_results_do_not_change():
    from arena.play.runner import StackedRunner, play_games

    # 8 games: the deterministic policy against 6 near-deterministic (sharp) frozen
    # policies, one per game, and a column bot in games 6 and 7: games of several lengths
    B = 8
    vec, group = connect_four(B)
    me_policy = small_policy(seed=0, sharp=True)
    sets = [small_policy(seed=1 + k, sharp=True) for k in range(6)]
    for p in sets:  # sharper still: the stack samples, and no draw may change an action
        with torch.no_grad():
            p.actor.weight.mul_(1000.0)
    seats = np.array([[0, 1], [1, 0]] * 3 + [[0, 2], [2, 0]])

    def play(retire: bool):
        me = Counting(me_policy)
        bot = Counting(ColumnBot(3))
        sides = [PolicyRunner(vec, [group], lambda key: me, seed=0, deterministic=True),
                 StackedRunner(vec, [group], [lambda key, p=p: p for p in sets],
                               np.array([0, 1, 2, 3, 4, 5, -1, -1]), seed=1),
                 BotSide(vec, {group.role.name: bot})]
        sides = sides if retire else [Hidden(s) for s in sides]
        return play_games(vec, sides, seats, seed=0), me.rows, bot.rows

    result, me_rows, bot_rows = play(retire=True)
    before, me_all, bot_all = play(retire=False)
    assert len(set(result.lengths.tolist())) >= 3, result.lengths  # the test needs variety
    # each game's first episode is played alike: the states of the games still open
    # follow them when the closed ones' rows are dropped
    assert np.array_equal(result.winners, before.winners)
    assert np.array_equal(result.lengths, before.lengths)
    assert np.array_equal(result.returns, before.returns)
    # without retiring, every step infers the policy's row in all 8 games; with it, a
    # closed game's row is no longer inferred (connect four: one row per game)
    steps = int(result.lengths.max())
    assert me_all == [B] * len(me_all) and len(me_all) >= steps
    open_at = np.array([(result.lengths >= t + 1).sum() for t in range(len(me_rows))])
    assert me_rows == open_at.tolist(), (me_rows, open_at)
    assert sum(me_rows) < sum(me_all)
    bot_open = np.array([(result.lengths[6:] >= t + 1).sum() for t in range(len(bot_rows))])
    assert bot_rows == bot_open[bot_open > 0].tolist()


def test_a_stacked_side_can_play_each_team_with_its_own_policy_set():
    """StackedRunner with owners per (game, team): one side plays both teams of a game,
    each with its own policy set, in one forward pass per step (a training match GIF)."""
    from arena.play.runner import StackedRunner, play_games

    B = 4
    vec, group = connect_four(B)
    sets = [small_policy(column=0), small_policy(column=6), small_policy(column=3)]
    owner = np.array([[0, 1], [1, 0], [2, 1], [0, 2]])
    side = Recording(StackedRunner(vec, [group], [lambda key, p=p: p for p in sets], owner,
                                   seed=0))
    result = play_games(vec, [side], np.zeros((B, 2), np.int64), seed=0)
    first = side.actions[0]  # every column is legal on the empty board
    column = np.array([[0, 6], [6, 0], [3, 6], [0, 3]])
    assert first.tolist() == column.tolist()
    # team 0 (player_0) moves first and stacks its column: it wins every game
    assert result.winners.tolist() == [0] * B and (result.lengths == 7).all()
