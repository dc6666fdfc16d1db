"""lrnnspec.proofs — the expressivity theorems as executable checks.

Importing this package registers every check in :data:`lrnnspec.proofs.result.CHECKS` (run them with
``lrnnspec prove``) and every construction in :data:`lrnnspec.proofs.construction.CONSTRUCTIONS`.

Modules: ``parity`` (Grazzi Thm 1/3, Sarrof), ``modcount`` (Grazzi Thm 2/6), ``products`` (Grazzi
Prop. 1), ``wordproblems`` (Grazzi Thm 3, DeltaProduct), ``complex_diagonal`` (Merrill et al.'s complex diagonal
SSMs: mod 3, S3), ``symbolic`` (sympy identities), ``horizon``
(finite-precision horizons), ``matrix`` (the prediction matrix of the report). Machinery:
``construction``, ``verify``, ``emulate``, ``castmodel``, ``witness``, ``models``, ``linalg``, ``groups``,
``exactness`` (realized transitions against the exact group elements).
"""

from . import parity  # noqa: F401
from . import modcount  # noqa: F401
from . import products  # noqa: F401
from . import wordproblems  # noqa: F401
from . import deltanet_groups  # noqa: F401
from . import deltanet_blocks  # noqa: F401
from . import symbolic  # noqa: F401
from . import horizon  # noqa: F401
from . import complex_diagonal  # noqa: F401

# --- regular languages (proofs/regular*.py, maintained separately): add its import line below ---
from . import plstm  # noqa: F401
from . import regular  # noqa: F401
from . import deltanet_regular  # noqa: F401
