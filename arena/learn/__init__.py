"""Learning: rollout collection, the league's opponents in it, the pure PPO update and the
LightningModule over it, and the training callbacks."""
