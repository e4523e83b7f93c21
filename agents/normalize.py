"""Running statistics: observation normalisation and value (return) normalisation.

Both keep their statistics as float64 *buffers*, so they travel with `state_dict()` (and so
with checkpoints and the weights the learner sends to actors) but are never touched by the
optimiser. They change only through explicit `update` calls.

- `RunningMeanStd`: exact running mean/variance of observations, merged batch by batch
  with the parallel-variance formula (Chan et al.); `normalize` standardises and clips to
  +-5, as OpenAI Five normalises and clips its observations.
- `ValueNorm`: MAPPO's value normalisation. The value head predicts returns in normalised
  units; `denormalize` brings its predictions back to reward units for GAE, and
  `normalize(returns)` gives the targets of the value loss.

Dtypes: the accumulators are float64 and stay float64 as long as nobody casts the module
(`module.double()/.float()/.half()` or `.to(dtype)` cast floating buffers too; moving to a
device does not). `normalize`/`denormalize` compute in the dtype of their input.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

Reduce = Callable[[Tensor], Tensor]


def _global_moments(x: Tensor, reduce: Reduce) -> tuple[Tensor, Tensor, Tensor]:
    """Count, mean and population variance of the rows of `x` (N, ...) over all ranks."""
    flat = x.reshape(x.shape[0], -1)
    sums = reduce(torch.cat([torch.tensor([float(x.shape[0])], dtype=torch.float64,
                                          device=x.device), flat.sum(0), (flat**2).sum(0)]))
    d = flat.shape[1]
    count = sums[0]
    mean = sums[1:1 + d] / count.clamp(min=1)
    var = (sums[1 + d:] / count.clamp(min=1) - mean**2).clamp(min=0)
    return count, mean, var


class RunningMeanStd(nn.Module):
    """Running mean and (population) variance of a stream of vectors of shape `shape`.

    Starts at count 0, mean 0, var 1: before the first update `normalize` only clips.
    After updates, `mean`/`var` equal numpy's `x.mean(0)`/`x.var(0)` over everything seen.
    """

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(self, shape: tuple[int, ...] | int = (), epsilon: float = 1e-8) -> None:
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.shape = shape
        self.epsilon = epsilon
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor, reduce: Reduce | None = None, mask: Tensor | None = None) -> None:
        """Merge a batch `x` of shape (..., *shape) into the running statistics.

        `mask` (...) bool: only those vectors count (they are not gathered: a rollout's
        padding and dead agents are skipped by weight). `reduce` sums a float64 tensor over
        ranks (arena.scale.distributed.all_reduce_sum): the batch is then the union of every
        rank's `x`, and every rank must call it."""
        x = x.detach().to(device=self.mean.device)
        if mask is not None:
            mask = mask.to(device=x.device, dtype=torch.bool).reshape(-1)
        if reduce is None and x.dtype in (torch.float32, torch.bfloat16, torch.float16):
            # A float32 batch (a rollout's observations): two float32 passes over it, centred
            # on the running mean, each a matrix-vector product with the rows' weights (a
            # column reduction that BLAS does several times faster than var_mean, with no
            # copy of the kept rows); merged in float64. Relative error ~1e-6.
            rows = x.reshape(-1, *self.shape).reshape(-1, max(math.prod(self.shape), 1))
            w = mask.to(torch.float32) if mask is not None else \
                torch.ones(rows.shape[0], dtype=torch.float32, device=x.device)
            n = float(w.sum())
            if n == 0:
                return
            centred = rows.to(torch.float32) - self.mean.to(torch.float32).reshape(-1)
            shift = (w @ centred) / n
            centred.sub_(shift)
            var = (w @ centred.mul_(centred)) / n
            self.update_from_moments(shift.double().view(self.shape) + self.mean,
                                     var.view(self.shape), n)
            return
        x = x.to(dtype=torch.float64).reshape(-1, *self.shape)
        if mask is not None:
            x = x[mask]
        if reduce is None:
            if x.shape[0]:
                self.update_from_moments(x.mean(0), x.var(0, unbiased=False), x.shape[0])
            return
        count, mean, var = _global_moments(x, reduce)
        if count > 0:
            self.update_from_moments(mean.view(self.shape), var.view(self.shape), count)

    @torch.no_grad()
    def update_from_moments(self, batch_mean: Tensor, batch_var: Tensor,
                            batch_count: int | float | Tensor) -> None:
        """Merge a batch given by its mean, population variance and count.

        Use this with moments all-reduced across ranks, so every rank's normaliser stays equal
        (under DDP, buffers are otherwise overwritten from rank 0 on each forward).
        """
        batch_mean = batch_mean.to(device=self.mean.device, dtype=torch.float64)
        batch_var = batch_var.to(device=self.mean.device, dtype=torch.float64)
        batch_count = torch.as_tensor(batch_count, dtype=torch.float64, device=self.mean.device)
        # Parallel-variance merge: combine the two groups' sums of squared deviations (M2).
        delta = batch_mean - self.mean
        total = self.count + batch_count
        new_mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def normalize(self, x: Tensor, clip: float = 5.0, out: Tensor | None = None) -> Tensor:
        """clip((x - mean) / sqrt(var + eps), -clip, clip), in x's dtype; written into `out`
        (x's shape, any strides of x) when given, e.g. to normalise and re-lay-out a batch
        in one pass."""
        mean = self.mean.to(x.dtype)
        std = torch.sqrt(self.var + self.epsilon).to(x.dtype)
        y = x - mean if out is None else torch.sub(x, mean, out=out)
        return y.div_(std).clamp_(-clip, clip)  # one new tensor, not three


class ValueNorm(nn.Module):
    """Running mean/std of value targets (returns), as MAPPO's `ValueNorm`.

    Keeps debiased exponential moving averages of E[x] and E[x^2] over update batches:

        w = beta                                  (beta given; MAPPO's default 0.99999)
        w = count / (count + batch_count)         (beta=None: the exact running estimate)
        running_mean    = w * running_mean    + (1 - w) * batch_mean
        running_mean_sq = w * running_mean_sq + (1 - w) * batch_mean_sq
        debiasing_term  = w * debiasing_term  + (1 - w)
        mean = running_mean / debiasing_term,  var = max(mean_sq/debias - mean^2, 1e-2)

    With beta = 0.99999 every update batch weighs the same whatever its size, and old batches
    are forgotten only very slowly (time constant 1e5 updates) - so the targets may drift as
    the policy improves. With beta=None the estimate is the plain mean/variance of all
    returns seen. The variance floor (1e-2, as MAPPO) keeps early, near-constant returns
    from blowing up the normalised targets. Before the first update it is the identity
    (mean 0, var 1), so values predicted before any return was seen are read as they are.
    """

    running_mean: Tensor
    running_mean_sq: Tensor
    debiasing_term: Tensor
    count: Tensor

    def __init__(self, shape: tuple[int, ...] | int = (), beta: float | None = 0.99999,
                 epsilon: float = 1e-5, min_var: float = 1e-2) -> None:
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.shape = shape
        self.beta = beta
        self.epsilon = epsilon
        self.min_var = min_var
        self.register_buffer("running_mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("running_mean_sq", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("debiasing_term", torch.zeros((), dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def mean_var(self) -> tuple[Tensor, Tensor]:
        """The debiased mean and variance (float64); (0, 1) before the first update."""
        debias = self.debiasing_term.clamp(min=self.epsilon)
        mean = self.running_mean / debias
        var = (self.running_mean_sq / debias - mean**2).clamp(min=self.min_var)
        seen = self.count > 0
        return torch.where(seen, mean, 0.0), torch.where(seen, var, 1.0)

    @torch.no_grad()
    def update(self, x: Tensor, reduce: Reduce | None = None) -> None:
        """Merge a batch of targets `x` of shape (..., *shape); pass only valid entries.
        `reduce`: as in `RunningMeanStd.update`, the batch of all ranks together."""
        x = x.detach().to(device=self.running_mean.device, dtype=torch.float64).reshape(-1, *self.shape)
        if reduce is not None:
            count, mean, var = _global_moments(x, reduce)
            if count == 0:
                return
            mean, mean_sq, n = mean.view(self.shape), (var + mean**2).view(self.shape), count
        else:
            n = x.shape[0]
            if n == 0:
                return
            mean, mean_sq = x.mean(0), (x**2).mean(0)
        if self.beta is None:
            weight = self.count / (self.count + n)
        else:
            weight = torch.tensor(self.beta, dtype=torch.float64, device=x.device)
        self.running_mean.mul_(weight).add_(mean * (1 - weight))
        self.running_mean_sq.mul_(weight).add_(mean_sq * (1 - weight))
        self.debiasing_term.mul_(weight).add_(1 - weight)
        self.count.add_(n)

    def normalize(self, v: Tensor) -> Tensor:
        """(v - mean) / std, in v's dtype."""
        mean, var = self.mean_var()
        return (v - mean.to(v.dtype)) / torch.sqrt(var).to(v.dtype)

    def denormalize(self, v: Tensor) -> Tensor:
        """v * std + mean, in v's dtype: the inverse of `normalize`."""
        mean, var = self.mean_var()
        return v * torch.sqrt(var).to(v.dtype) + mean.to(v.dtype)
