"""The MOBA's scripted bots act exactly as recorded: every action of whole matches between
them (and against the random bot), on several game configs, pinned in
tests/data/moba_bots_golden.npz. The bots are the fixed reference opponents that ratings are
anchored to, so a change in what they do (a faster implementation, a refactor) must show
here; a deliberate change of behaviour re-records the file:

    python tests/test_bots_golden.py --record
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from games.moba.bots import make_bot
from games.moba.config import MobaConfig
from games.moba.layout import MobaLayout
from games.moba.vec import MobaVec

GOLDEN = Path(__file__).parent / "data" / "moba_bots_golden.npz"
CONFIGS = {
    "3v3": dict(max_ticks=700),
    "1v1": dict(team_size=1, max_ticks=400),
    "5v5_3_lanes": dict(team_size=5, lanes=3, max_ticks=400),
    "2v2_1_visible": dict(team_size=2, num_visible=1, max_ticks=400),
}
MATCHES = [("pusher", "lasthitter"), ("teamfighter", "pusher"), ("passive", "teamfighter"),
           ("lasthitter", "passive"), ("pusher", "random"), ("random", "teamfighter")]
GAMES = 3


def match_actions(config: str, radiant: str, dire: str) -> np.ndarray:
    """(ticks, GAMES, heroes) int8: every action of a match of `radiant` against `dire` (the
    bots in each team's seat of every game, the games seeded 0, 1, 2), to the time limit."""
    cfg = MobaConfig(**CONFIGS[config])
    lay = MobaLayout(cfg)
    vec = MobaVec(GAMES, config=cfg, autoreset=False)
    bots = [make_bot(radiant, lay, seed=1), make_bot(dire, lay, seed=2)]
    step = vec.reset(seed=0)
    team = vec.slot_team
    out = []
    for _ in range(cfg.max_ticks):
        obs, mask = step.obs["hero"], step.action_mask["hero"]
        actions = np.zeros((GAMES, vec.num_slots), np.int64)
        for t, bot in enumerate(bots):
            cols = np.flatnonzero(team == t)
            picked = bot.act(obs[:, cols].reshape(-1, obs.shape[-1]),
                             mask[:, cols].reshape(-1, mask.shape[-1]).view(np.int8))
            actions[:, cols] = picked.reshape(GAMES, len(cols))
        out.append(actions.astype(np.int8))
        step = vec.step(actions)
        if step.dones.all() or not step.next_active.any():
            break
    return np.stack(out)


def cases() -> list[tuple[str, str, str]]:
    return [(c, a, b) for c in CONFIGS for a, b in MATCHES]


@pytest.mark.parametrize("config,radiant,dire", cases())
def test_bots_act_as_recorded(config, radiant, dire):
    golden = np.load(GOLDEN)
    want = golden[f"{config}/{radiant}/{dire}"]
    got = match_actions(config, radiant, dire)
    n = min(len(got), len(want))
    wrong = np.argwhere(got[:n] != want[:n])
    assert not len(wrong), (f"first differing action at tick {wrong[0][0]}, game "
                            f"{wrong[0][1]}, hero {wrong[0][2]}: {got[tuple(wrong[0])]} "
                            f"instead of {want[tuple(wrong[0])]}")
    assert len(got) == len(want)


if __name__ == "__main__" and "--record" in sys.argv:
    np.savez_compressed(GOLDEN, **{f"{c}/{a}/{b}": match_actions(c, a, b)
                                   for c, a, b in cases()})
    print(f"recorded {GOLDEN}")
