"""Learning: the PPO update (more of the learner moves here as the work touches it)."""
