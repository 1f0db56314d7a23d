"""``python -m equiglb.agents``: train an agent from an installed package.

The same command line as ``python train.py`` (repository checkout) and the ``equiglb-train``
console script; ``python -m equiglb.agents --help`` lists the flags, docs/training.md explains them.
"""

import sys

from equiglb.agents.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m equiglb.agents"))
