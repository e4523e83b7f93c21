"""Ratings (league/ratings.py): anchors, updates, the conservative estimate, persistence."""

import json

import pytest

from league.ratings import ANCHOR_SIGMA, BOT_ANCHORS, RatingTable


def test_anchors_never_move_and_start_where_they_are_put():
    table = RatingTable(anchors={"random": 10.0, "pusher": (40.0, 2.0)})
    assert table.rating("random") == (10.0, ANCHOR_SIGMA)
    assert table.rating("pusher") == (40.0, 2.0)
    for score in (1.0, 0.0, 0.5, 1.0, 1.0):
        table.update("new", "random", score)
        table.update("pusher", "new", score)
    table.update("random", "pusher", 1.0)  # two anchors: nothing moves, the game counts
    assert table.rating("random") == (10.0, ANCHOR_SIGMA)
    assert table.rating("pusher") == (40.0, 2.0)
    assert table.games["random"] == 6 and table.games["new"] == 10
    assert table.is_anchor("random") and not table.is_anchor("new")


def test_bot_anchors_are_in_order_of_strength_ten_apart():
    assert list(BOT_ANCHORS) == ["random", "passive", "lasthitter", "pusher"]
    values = list(BOT_ANCHORS.values())
    assert all(b - a == 10.0 for a, b in zip(values, values[1:]))
    table = RatingTable(anchors=BOT_ANCHORS)
    # a 10-point gap: the stronger bot is expected to win about 95% of the games
    assert 0.93 < table.win_probability("passive", "random") < 0.97


def test_the_winner_rises_and_the_loser_falls():
    table = RatingTable()
    table.add("a")
    table.add("b")
    (mu_a, sigma_a), (mu_b, _) = table.rating("a"), table.rating("b")
    table.update("a", "b", 1.0)
    assert table.rating("a")[0] > mu_a and table.rating("b")[0] < mu_b
    assert table.rating("a")[1] < sigma_a  # one more result: less uncertain
    # a draw between equals moves neither mu, only the uncertainty
    even = RatingTable()
    even.update("x", "y", 0.5)
    assert even.rating("x")[0] == pytest.approx(25.0) and even.rating("y")[0] == pytest.approx(25.0)
    assert even.rating("x")[1] < 25.0 / 3.0
    # beating a strong anchor is worth more than beating a weak one
    strong, weak = RatingTable({"bot": 40.0}), RatingTable({"bot": 10.0})
    strong.update("p", "bot", 1.0)
    weak.update("p", "bot", 1.0)
    assert strong.rating("p")[0] > weak.rating("p")[0]


def test_conservative_estimate_and_table_order():
    table = RatingTable(anchors={"random": 10.0})
    for _ in range(6):
        table.update("good", "random", 1.0)
        table.update("bad", "random", 0.0)
    table.add("newcomer")
    for name in ("good", "bad", "newcomer", "random"):
        mu, sigma = table.rating(name)
        assert table.conservative(name) == pytest.approx(mu - 3 * sigma)
    assert table.conservative("newcomer") == pytest.approx(0.0)  # 25 - 3 * 25/3
    rows = table.table()
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert [r["conservative"] for r in rows] == sorted((r["conservative"] for r in rows),
                                                       reverse=True)
    assert rows[0]["name"] == "good" and rows[-1]["name"] == "bad"
    good = next(r for r in rows if r["name"] == "good")
    assert good["win_rate"] == 1.0 and good["games"] == 6 and not good["anchor"]
    assert next(r for r in rows if r["name"] == "newcomer")["win_rate"] is None


def test_same_results_give_the_same_table():
    results = [("x", "y", 1.0), ("y", "z", 0.5), ("z", "x", 0.0), ("x", "random", 1.0)] * 4

    def rate():
        t = RatingTable(anchors={"random": 10.0})
        for a, b, s in results:
            t.update(a, b, s)
        return t.table()

    assert rate() == rate()


def test_state_round_trip_through_json():
    table = RatingTable(anchors=BOT_ANCHORS)
    for a, b, s in [("p", "random", 1.0), ("p", "pusher", 0.0), ("q", "p", 0.5)]:
        table.update(a, b, s)
    state = json.loads(json.dumps(table.state_dict()))
    assert state["ratings"]["random"] == [10.0, 1.0]
    again = RatingTable()
    again.load_state_dict(state)
    assert again.table() == table.table()
    assert again.anchors == table.anchors
    # both continue the same way
    table.update("q", "passive", 1.0)
    again.update("q", "passive", 1.0)
    assert again.rating("q") == table.rating("q") and again.rating("passive") == (20.0, 1.0)
    # the earlier format (no 'format'/'model' keys) still loads
    old = {k: state[k] for k in ("ratings", "anchors", "games", "score")}
    RatingTable().load_state_dict(old)


def test_bad_input_is_refused_with_a_clear_message():
    table = RatingTable()
    with pytest.raises(ValueError, match="cannot play itself"):
        table.update("a", "a", 1.0)
    with pytest.raises(ValueError, match=r"score_a must be in \[0, 1\]"):
        table.update("a", "b", 2.0)
    with pytest.raises(ValueError, match="score_a"):
        table.update("a", "b", float("nan"))
    with pytest.raises(KeyError, match="no player 'zz'"):
        table.rating("zz")
    with pytest.raises(ValueError, match="anchor 'x'"):
        RatingTable({"x": (1.0, -1.0)})
    table.update("a", "b", 1.0)
    before = table.table()
    for bad in ({"ratings": {"a": [1.0]}}, {"ratings": {"a": [1.0, 0.0]}},
                {"ratings": {"a": [1.0, 2.0]}, "anchors": ["b"]}, {"format": 99, "ratings": {}},
                {"ratings": {"a": ["x", 1.0]}}, []):
        with pytest.raises(ValueError, match="not a valid rating table state"):
            table.load_state_dict(bad)
    assert table.table() == before  # a failed load leaves the table as it was
