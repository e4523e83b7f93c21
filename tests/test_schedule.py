"""The discount schedule."""

import numpy as np
import pytest

from league.schedule import gamma_at


@pytest.mark.parametrize("mode", ["horizon", "linear"])
def test_endpoints_and_monotonic(mode):
    assert gamma_at(0, 0.998, 0.9997, 1000, mode) == pytest.approx(0.998, abs=1e-12)
    assert gamma_at(1000, 0.998, 0.9997, 1000, mode) == pytest.approx(0.9997, abs=1e-12)
    assert gamma_at(5000, 0.998, 0.9997, 1000, mode) == pytest.approx(0.9997, abs=1e-12)
    values = [gamma_at(s, 0.998, 0.9997, 1000, mode) for s in range(0, 1200, 7)]
    assert all(b >= a for a, b in zip(values, values[1:]))


def test_horizon_mode_is_linear_in_the_horizon():
    h = [1 / (1 - gamma_at(s, 0.998, 0.9997, 1000)) for s in (0, 250, 500, 1000)]
    assert h[0] == pytest.approx(500.0) and h[3] == pytest.approx(1 / 0.0003)
    assert h[2] == pytest.approx((h[0] + h[3]) / 2)
    assert h[1] == pytest.approx(h[0] + (h[3] - h[0]) / 4)
    # linear in gamma stays at short horizons for most of the schedule
    assert gamma_at(500, 0.998, 0.9997, 1000, "linear") < gamma_at(500, 0.998, 0.9997, 1000)


def test_constant_and_no_anneal():
    assert gamma_at(123, 0.99, 0.9997, 1000, "constant") == 0.99
    assert gamma_at(0, 0.99, 0.999, 0) == 0.999


@pytest.mark.parametrize("kwargs, field", [({"start": 1.0}, "gamma.start"), ({"end": 0.0}, "gamma.end"),
                                           ({"mode": "cosine"}, "gamma.mode")])
def test_bad_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        gamma_at(0, **kwargs)
