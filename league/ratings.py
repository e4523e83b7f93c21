"""TrueSkill-style ratings (openskill's Plackett-Luce model) with fixed anchors.

Players are rated from 1-vs-1 results (win, draw, loss). Anchors never move: the MOBA's
scripted bots are fixed reference points, as OpenAI Five measured itself against fixed
reference agents, so ratings from different tournaments and training runs share a scale.
The conservative estimate mu - 3 sigma ranks players by what they have surely shown.
"""

from __future__ import annotations

from typing import Any

from openskill.models import PlackettLuce

# The scripted bots, 10 points apart: with openskill's default beta (25/6) a 10-point gap is
# about a 95% win probability, which is what each bot scores against the one below it
# (games/moba/bots.py; tests/test_bots.py).
BOT_ANCHORS: dict[str, float] = {"random": 10.0, "passive": 20.0, "lasthitter": 30.0,
                                 "pusher": 40.0}
ANCHOR_SIGMA = 1.0


class RatingTable:
    def __init__(self, anchors: dict[str, float] | None = None) -> None:
        self.model = PlackettLuce()
        self.ratings: dict[str, Any] = {}
        self.anchors = set(anchors or {})
        for name, mu in (anchors or {}).items():
            self.ratings[name] = self.model.rating(mu=mu, sigma=ANCHOR_SIGMA, name=name)
        self.games: dict[str, int] = {}
        self.score: dict[str, float] = {}

    def add(self, name: str) -> None:
        if name not in self.ratings:
            self.ratings[name] = self.model.rating(name=name)
        self.games.setdefault(name, 0)
        self.score.setdefault(name, 0.0)

    def update(self, a: str, b: str, score_a: float) -> None:
        """One game: `score_a` is 1 (a won), 0.5 (draw) or 0 (b won)."""
        self.add(a)
        self.add(b)
        ranks = [1, 2] if score_a > 0.5 else ([2, 1] if score_a < 0.5 else [1, 1])
        (ra,), (rb,) = self.model.rate([[self.ratings[a]], [self.ratings[b]]], ranks=ranks)
        if a not in self.anchors:
            self.ratings[a] = ra
        if b not in self.anchors:
            self.ratings[b] = rb
        for name, s in ((a, score_a), (b, 1.0 - score_a)):
            self.games[name] += 1
            self.score[name] += s

    def rating(self, name: str) -> tuple[float, float]:
        r = self.ratings[name]
        return float(r.mu), float(r.sigma)

    def conservative(self, name: str) -> float:
        mu, sigma = self.rating(name)
        return mu - 3.0 * sigma

    def table(self) -> list[dict[str, Any]]:
        """Rows sorted by the conservative estimate, best first."""
        rows = []
        for name in self.ratings:
            mu, sigma = self.rating(name)
            games = self.games.get(name, 0)
            rows.append({"name": name, "mu": mu, "sigma": sigma, "conservative": mu - 3 * sigma,
                         "games": games, "anchor": name in self.anchors,
                         "win_rate": self.score.get(name, 0.0) / games if games else None})
        rows.sort(key=lambda row: -row["conservative"])
        for rank, row in enumerate(rows, 1):
            row["rank"] = rank
        return rows

    def state_dict(self) -> dict[str, Any]:
        return {"ratings": {n: list(self.rating(n)) for n in self.ratings},
                "anchors": sorted(self.anchors), "games": dict(self.games),
                "score": dict(self.score)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.anchors = set(state["anchors"])
        self.ratings = {n: self.model.rating(mu=mu, sigma=sigma, name=n)
                        for n, (mu, sigma) in state["ratings"].items()}
        self.games = dict(state["games"])
        self.score = dict(state["score"])
