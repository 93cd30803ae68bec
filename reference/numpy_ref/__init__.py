"""The NumPy float64 oracle: every component and network, written to be checked line by line.

The public names mirror :mod:`nnspec.reference.torch_ref` exactly; see ``reference/PARAMETERS.md``.
"""

from .components import *  # noqa: F403
from .networks import *  # noqa: F403
