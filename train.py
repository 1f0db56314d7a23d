#!/usr/bin/env python
"""Train an RL agent on equiglb and compare it with the optimization baselines.

    python train.py --algo ppo            # defaults: synthetic scenario, see --help

All the work is in :mod:`equiglb.agents`; see docs/training.md.
"""

import sys

from equiglb.agents.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="train.py"))
