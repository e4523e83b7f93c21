"""TrueSkill-style ratings from 1-vs-1 results, with fixed anchors.

`RatingTable` rates players from results of single games (1 win, 0.5 draw, 0 loss for the
first player) with openskill's Plackett-Luce model (a Bayesian rating in the TrueSkill
family, Weng & Lin 2011): each player has a skill estimate mu and an uncertainty sigma;
`conservative(name) = mu - 3 sigma` is what a player has surely shown, and ranks players
(a new player starts at mu 25, sigma 25/3, so at 0).

Anchors never move. The MOBA's scripted bots are fixed reference points (as OpenAI Five
measured itself against fixed reference agents), so ratings from different tournaments
and from training runs share one scale. A game against an anchor moves only the other
player (the update is computed with the anchor's mu and sigma, and the anchor's half of
it is dropped).

How the anchors got their values (`BOT_ANCHORS`). Measured on the 3v3 MOBA (full games
of 1500 ticks, 16 games per side for each pair, sides swapped): passive beats random in
97% of the games; lasthitter beats random and passive, and pusher beats all three, in
100%. No finite maximum-likelihood calibration exists for results that lopsided, so the
bots take fixed values in their order of strength, 10 points apart, each with sigma 1:

    random 10, passive 20, lasthitter 30, pusher 40

With openskill's default beta (25/6), a 10-point gap between two well-known players (sigma
1) predicts about 95% wins for the stronger one (`openskill` `predict_win`): close to the
measured margins, so a player rated near an anchor really plays at about its level.
Anchors given as a number get `ANCHOR_SIGMA`; a (mu, sigma) pair sets both.

Deterministic: the same sequence of results gives the same table (openskill's updates are
closed-form; nothing is sampled). `state_dict()` is plain JSON (kept in training checkpoints).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from openskill.models import PlackettLuce

BOT_ANCHORS: dict[str, float] = {"random": 10.0, "passive": 20.0, "lasthitter": 30.0,
                                 "pusher": 40.0}
ANCHOR_SIGMA = 1.0
FORMAT = 1


class RatingTable:
    """Ratings of named players; `anchors` maps a name to a fixed mu or (mu, sigma)."""

    def __init__(self, anchors: Mapping[str, float | tuple[float, float]] | None = None) -> None:
        self.model = PlackettLuce()
        self._mu_sigma: dict[str, tuple[float, float]] = {}
        self.anchors: set[str] = set()
        self.games: dict[str, int] = {}
        self.score: dict[str, float] = {}
        for name, value in (anchors or {}).items():
            self._mu_sigma[_check_name(name)] = _anchor_value(name, value)
            self.anchors.add(name)
            self.games[name] = 0
            self.score[name] = 0.0

    # ---- players --------------------------------------------------------------------------
    def add(self, name: str) -> None:
        """A new player at openskill's prior (mu 25, sigma 25/3); no-op if already known."""
        if name not in self._mu_sigma:
            r = self.model.rating()
            self._mu_sigma[_check_name(name)] = (float(r.mu), float(r.sigma))
        self.games.setdefault(name, 0)
        self.score.setdefault(name, 0.0)

    def __contains__(self, name: object) -> bool:
        return name in self._mu_sigma

    def __len__(self) -> int:
        return len(self._mu_sigma)

    @property
    def names(self) -> list[str]:
        """Players in the order they were added."""
        return list(self._mu_sigma)

    def is_anchor(self, name: str) -> bool:
        return name in self.anchors

    # ---- results --------------------------------------------------------------------------
    def update(self, a: str, b: str, score_a: float) -> None:
        """One game between a and b: `score_a` is 1 (a won), 0.5 (draw) or 0 (b won); any
        number in [0, 1] counts as a win above 0.5 and a loss below. Unknown players are
        added first; anchors keep their rating (their games are still counted)."""
        if a == b:
            raise ValueError(f"a player cannot play itself: {a!r}")
        s = float(score_a)
        if not 0.0 <= s <= 1.0:  # also catches nan
            raise ValueError(f"score_a must be in [0, 1] (1 win, 0.5 draw, 0 loss), got {score_a!r}")
        self.update_game([a, b], [s, 1.0 - s])

    def update_game(self, names: Sequence[str], scores: Sequence[float]) -> None:
        """One game between two or more players (one per team): a higher score places
        higher, equal scores tie, and openskill rates all places at once. Each player's
        score (1 win, 0.5 draw, 0 loss) is added to its total."""
        names, scores = list(names), [float(x) for x in scores]
        if len(names) < 2 or len(names) != len(scores):
            raise ValueError(f"a game needs two or more players with one score each, got "
                             f"{names} and {scores}")
        if len(set(names)) != len(names):
            raise ValueError(f"a player cannot play itself: {names}")
        for name in names:
            self.add(name)
        if not all(n in self.anchors for n in names):
            ranks = [1 + sum(o > s for o in scores) for s in scores]
            rated = self.model.rate([[self.model.rating(*self._mu_sigma[n])] for n in names],
                                    ranks=ranks)
            for name, (new,) in zip(names, rated):
                if name not in self.anchors:
                    self._mu_sigma[name] = (float(new.mu), float(new.sigma))
        for name, s in zip(names, scores):
            self.games[name] += 1
            self.score[name] += s

    # ---- reading --------------------------------------------------------------------------
    def rating(self, name: str) -> tuple[float, float]:
        """(mu, sigma) of a player."""
        try:
            return self._mu_sigma[name]
        except KeyError:
            raise KeyError(f"no player {name!r} in the rating table") from None

    def conservative(self, name: str) -> float:
        """mu - 3 sigma: a lower bound on the skill (about 99.9% sure)."""
        mu, sigma = self.rating(name)
        return mu - 3.0 * sigma

    def win_probability(self, a: str, b: str) -> float:
        """The model's chance that a beats b in one game."""
        ra, rb = (self.model.rating(*self.rating(n)) for n in (a, b))
        return float(self.model.predict_win([[ra], [rb]])[0])

    def table(self) -> list[dict[str, Any]]:
        """One row per player, best first: sorted by the conservative rating (then mu, then
        name). Rows: rank, name, mu, sigma, conservative, games, score, win_rate (None
        before any game), anchor."""
        rows = []
        for name, (mu, sigma) in self._mu_sigma.items():
            games = self.games.get(name, 0)
            score = self.score.get(name, 0.0)
            rows.append({"name": name, "mu": mu, "sigma": sigma, "conservative": mu - 3 * sigma,
                         "games": games, "score": score,
                         "win_rate": score / games if games else None,
                         "anchor": name in self.anchors})
        rows.sort(key=lambda row: (-row["conservative"], -row["mu"], row["name"]))
        for rank, row in enumerate(rows, 1):
            row["rank"] = rank
        return rows

    # ---- persistence ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-able: {format, model, ratings: {name: [mu, sigma]}, anchors: [names],
        games: {name: n}, score: {name: summed score}}."""
        return {"format": FORMAT, "model": type(self.model).__name__,
                "ratings": {n: [mu, sigma] for n, (mu, sigma) in self._mu_sigma.items()},
                "anchors": sorted(self.anchors), "games": dict(self.games),
                "score": dict(self.score)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Back to a saved table exactly (anchors and their values included). A malformed
        state raises ValueError naming the problem and leaves the table as it was."""
        try:
            if not isinstance(state, Mapping):
                raise ValueError("expected a mapping")
            fmt = state.get("format", FORMAT)
            if fmt != FORMAT:
                raise ValueError(f"unknown format {fmt!r} (this version reads {FORMAT})")
            model = state.get("model", type(self.model).__name__)
            if model != type(self.model).__name__:
                raise ValueError(f"ratings of model {model!r}, this table uses "
                                 f"{type(self.model).__name__}")
            raw = state["ratings"]
            if not isinstance(raw, Mapping):
                raise ValueError("'ratings' must map names to [mu, sigma]")
            ratings: dict[str, tuple[float, float]] = {}
            for name, value in raw.items():
                if not (isinstance(value, (list, tuple)) and len(value) == 2):
                    raise ValueError(f"rating of {name!r} must be [mu, sigma], got {value!r}")
                mu, sigma = (_finite(v, f"rating of {name!r}") for v in value)
                if sigma <= 0:
                    raise ValueError(f"rating of {name!r}: sigma must be positive, got {sigma}")
                ratings[_check_name(name)] = (mu, sigma)
            anchors = set(state.get("anchors", []))
            if not anchors <= set(ratings):
                raise ValueError(f"anchors without a rating: {sorted(anchors - set(ratings))}")
            games = {str(k): int(v) for k, v in dict(state.get("games", {})).items()}
            score = {str(k): _finite(v, f"score of {k!r}") for k, v in
                     dict(state.get("score", {})).items()}
            if any(v < 0 for v in games.values()):
                raise ValueError("game counts must be >= 0")
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a valid rating table state: {exc}") from None
        self._mu_sigma = ratings
        self.anchors = anchors
        self.games = {n: games.get(n, 0) for n in ratings}
        self.score = {n: score.get(n, 0.0) for n in ratings}


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a player name must be a non-empty string, got {name!r}")
    return name


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return float(value)


def _anchor_value(name: str, value: Any) -> tuple[float, float]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"anchor {name!r}: expected mu or (mu, sigma), got {value!r}")
        mu, sigma = (_finite(v, f"anchor {name!r}") for v in value)
    else:
        mu, sigma = _finite(value, f"anchor {name!r}"), ANCHOR_SIGMA
    if sigma <= 0:
        raise ValueError(f"anchor {name!r}: sigma must be positive, got {sigma}")
    return mu, sigma
