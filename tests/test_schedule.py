"""The discount schedule."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from league.schedule import GammaSchedule, gamma_at

START, END, T = 0.998, 0.9997, 1000


@pytest.mark.parametrize("mode", ["horizon", "linear"])
def test_endpoints_are_exact_and_clamped(mode):
    assert gamma_at(0, START, END, T, mode) == START
    assert gamma_at(-50, START, END, T, mode) == START  # before the start: clamped
    assert gamma_at(T, START, END, T, mode) == END
    assert gamma_at(T + 1, START, END, T, mode) == END
    assert gamma_at(10**9, START, END, T, mode) == END


def test_constant_is_always_start():
    for step in (0, 1, 500, 1000, 10**6):
        assert gamma_at(step, 0.99, END, T, "constant") == 0.99
    assert gamma_at(5, 0.99, END, 0, "constant") == 0.99  # even without annealing


@pytest.mark.parametrize("mode", ["horizon", "linear"])
def test_no_annealing_means_end_at_once(mode):
    assert gamma_at(0, 0.99, 0.999, 0, mode) == 0.999
    assert gamma_at(7, 0.99, 0.999, -3, mode) == 0.999


@pytest.mark.parametrize("mode", ["horizon", "linear"])
def test_monotonic_non_decreasing(mode):
    values = [gamma_at(s, START, END, T, mode) for s in range(-10, T + 200)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert START <= min(values) and max(values) <= END


@settings(max_examples=200, deadline=None)
@given(start=st.floats(0.5, 0.9999), delta=st.floats(0.0, 0.49), t=st.integers(1, 10**6),
       a=st.integers(-10, 2 * 10**6), b=st.integers(-10, 2 * 10**6),
       mode=st.sampled_from(["horizon", "linear"]))
def test_monotonic_and_bounded_for_any_settings(start, delta, t, a, b, mode):
    end = min(start + delta, 0.99999)
    lo, hi = sorted((a, b))
    g_lo, g_hi = gamma_at(lo, start, end, t, mode), gamma_at(hi, start, end, t, mode)
    eps = 1e-15  # one rounding step: the formula's value just before `end` vs `end` itself
    assert g_lo <= g_hi + eps
    assert start - eps <= g_lo <= end + eps and start - eps <= g_hi <= end + eps


def test_horizon_mode_is_linear_in_the_horizon():
    h = {s: 1 / (1 - gamma_at(s, START, END, T)) for s in (0, 250, 500, 1000)}
    h0, h1 = 1 / (1 - START), 1 / (1 - END)
    assert h[0] == pytest.approx(h0) and h0 == pytest.approx(500.0)
    assert h[1000] == pytest.approx(h1) and h1 == pytest.approx(1 / 0.0003)
    assert h[500] == pytest.approx((h0 + h1) / 2, rel=1e-9)  # the midpoint of the horizons
    assert h[250] == pytest.approx(h0 + (h1 - h0) / 4, rel=1e-9)
    # linear in gamma stays at short horizons for most of the schedule
    assert gamma_at(500, START, END, T, "linear") == pytest.approx((START + END) / 2)
    assert gamma_at(500, START, END, T, "linear") < gamma_at(500, START, END, T, "horizon")


def test_decreasing_schedules_work_too():
    assert gamma_at(0, 0.999, 0.99, 100) == 0.999
    assert gamma_at(100, 0.999, 0.99, 100) == 0.99
    values = [gamma_at(s, 0.999, 0.99, 100) for s in range(101)]
    assert all(b <= a for a, b in zip(values, values[1:]))


def test_gamma_schedule_object():
    sched = GammaSchedule(START, END, T)
    assert sched(0) == START and sched(T) == END
    assert sched(400) == gamma_at(400, START, END, T)
    assert sched.horizon(T // 2) == pytest.approx((500 + 1 / 0.0003) / 2)
    assert GammaSchedule(0.9, 0.99, T, "constant")(T) == 0.9
    with pytest.raises(ValueError, match="gamma.mode"):
        GammaSchedule(mode="cosine")


@pytest.mark.parametrize("kwargs, field", [
    ({"start": 1.0}, "gamma.start"), ({"start": 0.0}, "gamma.start"),
    ({"start": -0.5}, "gamma.start"), ({"start": float("nan")}, "gamma.start"),
    ({"end": 0.0}, "gamma.end"), ({"end": 1.5}, "gamma.end"), ({"end": "0.99"}, "gamma.end"),
    ({"mode": "cosine"}, "gamma.mode"), ({"mode": None}, "gamma.mode"),
    ({"anneal_steps": float("nan")}, "gamma.anneal_steps"),
    ({"anneal_steps": "100"}, "gamma.anneal_steps"),
])
def test_bad_arguments_name_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=field):
        gamma_at(0, **kwargs)
    # validated in every mode, including constant
    if "mode" not in kwargs:
        with pytest.raises(ValueError, match=field):
            gamma_at(0, **kwargs, mode="constant")
