"""The universal random bot and the connect-four bot: legal moves, win, block, centre, and
strength against random on the real PettingZoo game."""

import numpy as np

from games.bots import ConnectFourBot, RandomBot


def board(mine=(), theirs=()):
    b = np.zeros((6, 7, 2), np.float32)
    for r, c in mine:
        b[r, c, 0] = 1
    for r, c in theirs:
        b[r, c, 1] = 1
    return b.reshape(1, -1)


def test_random_bot_plays_only_legal_actions_uniformly():
    bot = RandomBot(seed=3)
    mask = np.zeros((20000, 5), bool)
    mask[:, [1, 3]] = True
    actions = bot.act(np.zeros((20000, 2), np.float32), mask)
    assert set(actions.tolist()) == {1, 3}
    assert abs((actions == 1).mean() - 0.5) < 0.02
    # a row that allows nothing still gets an action in range
    assert 0 <= bot.act(np.zeros((1, 2)), np.zeros((1, 5), bool))[0] < 5


def test_connect_four_bot_wins_blocks_and_prefers_the_centre():
    bot = ConnectFourBot(seed=0)
    full = np.ones((1, 7), bool)
    # three of its own in the bottom row (columns 0-2): column 3 wins
    assert bot.act(board(mine=[(5, 0), (5, 1), (5, 2)], theirs=[(4, 0), (4, 1)]), full)[0] == 3
    # the opponent threatens column 6 vertically: block it
    assert bot.act(board(mine=[(5, 0), (5, 1)], theirs=[(5, 6), (4, 6), (3, 6)]), full)[0] == 6
    # winning beats blocking
    assert bot.act(board(mine=[(5, 1), (4, 1), (3, 1)], theirs=[(5, 5), (4, 5), (3, 5)]),
                   full)[0] == 1
    # nothing urgent: the centre, or the legal column nearest it
    assert bot.act(board(), full)[0] == 3
    mask = full.copy()
    mask[0, 3] = False
    assert bot.act(board(), mask)[0] in (2, 4)
    # a diagonal win: (5,0) (4,1) (3,2) -> (2,3)
    diag = board(mine=[(5, 0), (4, 1), (3, 2)],
                 theirs=[(5, 1), (5, 2), (4, 2), (5, 3), (4, 3), (3, 3)])
    assert bot.act(diag, full)[0] == 3


def test_connect_four_bot_beats_random_on_the_real_game():
    from pettingzoo.classic import connect_four_v3

    bots = {"bot": ConnectFourBot(seed=1), "random": RandomBot(seed=2)}
    wins = 0
    games = 40
    for g in range(games):
        env = connect_four_v3.env()
        env.reset(seed=g)
        seats = {"player_0": "bot", "player_1": "random"} if g % 2 == 0 else \
            {"player_0": "random", "player_1": "bot"}
        for agent in env.agent_iter():
            obs, reward, term, trunc, _ = env.last()
            if term or trunc:
                if seats[agent] == "bot" and reward > 0:
                    wins += 1
                env.step(None)
                continue
            flat = obs["observation"].astype(np.float32).reshape(1, -1)
            env.step(int(bots[seats[agent]].act(flat, obs["action_mask"][None].astype(bool))[0]))
    assert wins / games >= 0.9, wins
