"""One module per family; importing this package registers them all, in this order."""

from . import (  # noqa: F401
    linear_attention,
    retention,
    simple_gla,
    gla,
    mamba2,
    mamba,
    mlstm,
    delta_rule,
    gated_delta_rule,
    delta_product,
    dplr,
    plstm,
)
