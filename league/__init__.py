"""The league: opponents, discount schedule, reward shaping and ratings."""
