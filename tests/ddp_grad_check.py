"""Run by tests/test_distributed.py in a subprocess (Lightning's DDP launcher re-executes it
once per extra rank): one PPO update of two epochs over one minibatch (two optimizer steps, two backward passes),
with the gradient every rank applies at each step written out.

    python tests/ddp_grad_check.py OUT_DIR ddp      2 CPU ranks (gloo), one rollout each
    python tests/ddp_grad_check.py OUT_DIR single   1 rank on both ranks' rollouts together

Each rank's first collection is a fixed function of the initial weights and the rank's
collector seed, so the single-device run rebuilds exactly the global batch of the DDP run.
"""

import sys
from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import Callback
from safetensors.numpy import save_file

from arena.config import load_config
from arena.learn.rollout import Collector, concat_rollouts
from arena.train import train
from games.vector import make_vec

RANK_SEED = 7919  # arena.learn.learner: collector seed = run.seed + 7919 * rank


class Capture(Callback):
    def __init__(self, out: Path, mode: str) -> None:
        self.out, self.mode = out, mode
        self.steps = 0

    def on_train_start(self, trainer, module) -> None:
        if self.mode != "single":
            return
        first = module.collector
        cfg = module.cfg
        second = Collector(make_vec(cfg.game.name, cfg.game.num_envs, **cfg.game.options),
                           first.policies, first.groups, cfg.ppo.chunk_len,
                           cfg.ppo.chunks_per_update, seed=cfg.run.seed + RANK_SEED)
        original = first.collect
        first.collect = lambda: concat_rollouts([original(), second.collect()])

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.steps += 1
        grads = {name: p.grad.detach().numpy().copy() for name, p in module.named_parameters()
                 if p.grad is not None}
        save_file(grads, str(self.out / f"{self.mode}-rank{trainer.global_rank}-step{self.steps}.safetensors"))


def main() -> None:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    devices = 2 if mode == "ddp" else 1
    cfg = load_config(None, [
        "game.options.team_size=1", "game.options.max_ticks=24", "game.num_envs=2",
        "ppo.chunk_len=8", "ppo.chunks_per_update=2", "ppo.update_epochs=2",
        "ppo.num_minibatches=1", "ppo.max_grad_norm=1e9", "league.enabled=false",
        "eval.every=0", "watch.every=0", "model.hidden=32", "model.lstm_hidden=32",
        "trainer.max_updates=1", "trainer.checkpoint_every=1", f"trainer.devices={devices}",
        "trainer.num_threads=1", f"run.root={out}", f"run.name={mode}"])
    train(cfg, callbacks=[Capture(out, mode)])


if __name__ == "__main__":
    main()
