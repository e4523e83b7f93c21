"""Scaling out: actor processes, their transport and wire format, the league link that
ranks and actors share, and DDP helpers."""
