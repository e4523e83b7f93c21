"""The built-in MOBA: a batched numba core and a PettingZoo view over it."""

from games.moba.config import ITEM_NAMES, ITEMS, MobaConfig, make_config
from games.moba.core import MobaCore, StepResult
from games.moba.env import MobaEnv
from games.moba.layout import EVENT_NAMES, MobaLayout

__all__ = ["ITEMS", "ITEM_NAMES", "EVENT_NAMES", "MobaConfig", "MobaCore", "MobaEnv", "MobaLayout",
           "StepResult", "make_config"]
