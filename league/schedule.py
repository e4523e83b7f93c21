"""The discount schedule: OpenAI Five annealed gamma from 0.998 to 0.9997 during training.

A discount gamma looks about 1/(1-gamma) steps ahead, so the default interpolates linearly
in that horizon (500 -> ~3333 steps) rather than in gamma itself, which would spend most
of the schedule at short horizons.
"""

from __future__ import annotations

MODES = ("horizon", "linear", "constant")


def gamma_at(step: int, start: float = 0.998, end: float = 0.9997, anneal_steps: int = 5000,
             mode: str = "horizon") -> float:
    """The discount at `step` (updates), from `start` to `end` over `anneal_steps`.

    "horizon": linear in 1/(1-gamma); "linear": linear in gamma; "constant": `start`.
    After `anneal_steps` it stays at `end`; `anneal_steps <= 0` means `end` at once.
    """
    for name, value in (("start", start), ("end", end)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"gamma.{name}: expected a number in (0, 1), got {value!r}")
    if mode not in MODES:
        raise ValueError(f"gamma.mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "constant":
        return float(start)
    if anneal_steps <= 0:
        return float(end)
    frac = min(max(step / anneal_steps, 0.0), 1.0)
    if mode == "linear":
        return float(start + frac * (end - start))
    h0, h1 = 1.0 / (1.0 - start), 1.0 / (1.0 - end)
    return float(1.0 - 1.0 / (h0 + frac * (h1 - h0)))
