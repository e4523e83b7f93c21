"""The discount schedule: OpenAI Five annealed gamma from 0.998 to 0.9997 during training.

A discount gamma looks about 1/(1-gamma) steps ahead, so the default interpolates linearly
in that horizon (500 -> ~3333 steps) rather than in gamma itself, which would spend most
of the schedule at short horizons:

    horizon:  1/(1-gamma(t)) = h0 + f (h1 - h0),  h = 1/(1-gamma),  f = clip(t / T, 0, 1)
    linear:   gamma(t) = start + f (end - start)
    constant: gamma(t) = start

After T = `anneal_steps` it stays at `end`; T <= 0 means `end` at once (but "constant" is
always `start`). Steps are whatever the caller counts (the learner passes updates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MODES = ("horizon", "linear", "constant")


def _check(start: float, end: float, mode: str) -> None:
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0.0 < value < 1.0:
            raise ValueError(f"gamma.{name}: expected a number in (0, 1), got {value!r}")
    if mode not in MODES:
        raise ValueError(f"gamma.mode: expected one of {', '.join(MODES)}, got {mode!r}")


def gamma_at(step: int, start: float = 0.998, end: float = 0.9997, anneal_steps: int = 5000,
             mode: str = "horizon") -> float:
    """The discount at `step`, from `start` to `end` over `anneal_steps` (see the module)."""
    _check(start, end, mode)
    if isinstance(anneal_steps, bool) or not isinstance(anneal_steps, (int, float)) \
            or math.isnan(anneal_steps):
        raise ValueError(f"gamma.anneal_steps: expected a number, got {anneal_steps!r}")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or math.isnan(step):
        raise ValueError(f"gamma step: expected a number, got {step!r}")
    if mode == "constant":
        return float(start)
    if anneal_steps <= 0 or step >= anneal_steps:
        return float(end)  # exact at and after the end of the schedule
    if step <= 0:
        return float(start)  # exact at and before the start
    frac = step / anneal_steps
    if mode == "linear":
        return float(start + frac * (end - start))
    h0, h1 = 1.0 / (1.0 - start), 1.0 / (1.0 - end)
    return float(1.0 - 1.0 / (h0 + frac * (h1 - h0)))


@dataclass(frozen=True)
class GammaSchedule:
    """`gamma_at` with its settings bound: `GammaSchedule(0.998, 0.9997, 5000)(step)`."""

    start: float = 0.998
    end: float = 0.9997
    anneal_steps: int = 5000
    mode: str = "horizon"

    def __post_init__(self) -> None:
        gamma_at(0, self.start, self.end, self.anneal_steps, self.mode)  # validates

    def __call__(self, step: int) -> float:
        return gamma_at(step, self.start, self.end, self.anneal_steps, self.mode)

    def horizon(self, step: int) -> float:
        """1/(1-gamma): about how many steps ahead the discount looks."""
        return 1.0 / (1.0 - self(step))
