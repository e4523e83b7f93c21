"""Run by tests/test_distributed.py in a subprocess (Lightning's DDP launcher re-executes it
for rank 1): 2 CPU ranks train the memory game; at update AT, rank RANK sends itself a
SIGTERM from a callback that runs after the stop check (where Lightning raises on its own
at the end of the update). The run must stop on every rank at one update, with a checkpoint.

    python tests/ddp_sigterm_check.py OUT_DIR AT RANK
"""

import os
import signal
import sys
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from arena.cli import main as cli_main

AT, RANK = int(sys.argv[2]), int(sys.argv[3])


class TermAfterCheck(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.updates == AT and trainer.global_rank == RANK:
            os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    import arena.train as T

    out = Path(sys.argv[1])
    build = T.build_trainer
    T.build_trainer = lambda cfg, run_dir, callbacks=(): build(cfg, run_dir,
                                                               [*callbacks, TermAfterCheck()])
    from arena.config import CONFIG_DIR

    return cli_main(["train", str(CONFIG_DIR / "memory.yaml"), f"run.root={out}", "run.name=d",
                     "trainer.devices=2", "trainer.accelerator=cpu", "trainer.num_threads=1",
                     "game.num_envs=8", "ppo.update_epochs=1", "model.hidden=16",
                     "model.lstm_hidden=16", "trainer.max_updates=100000",
                     "trainer.checkpoint_every=100000", "trainer.checkpoint_minutes=null"])


if __name__ == "__main__":
    sys.exit(main())
