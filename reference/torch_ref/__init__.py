"""The PyTorch implementation (any device, any dtype): a mirror image of the NumPy oracle.

The public names mirror :mod:`nnspec.reference.numpy_ref` exactly; see ``reference/PARAMETERS.md``.
"""

from .components import *  # noqa: F403
from .networks import *  # noqa: F403
