"""The searched space as the unit cube, for the samplers that work in one (CMA-ES, quasi-random sequences).

A Uniform's range maps linearly onto [0, 1], a LogUniform's logarithmically; a Choice's values split [0, 1) into
equal parts.
"""

import math


def to_unit(dim, x):
    """The coordinate in [0, 1] of the float ``x`` of the float dimension ``dim``."""
    if dim.log:
        u = (math.log(x) - math.log(dim.low)) / (math.log(dim.high) - math.log(dim.low))
    else:
        u = (x - dim.low) / (dim.high - dim.low)
    return min(1.0, max(0.0, u))


def from_unit(dim, u):
    """The value of dimension ``dim`` at the coordinate ``u`` in [0, 1]: a float in its range, or a Choice's index."""
    u = min(1.0, max(0.0, float(u)))
    if dim.kind == "index":
        return min(int(u * dim.size), dim.size - 1)
    if dim.log:
        x = math.exp(math.log(dim.low) + u * (math.log(dim.high) - math.log(dim.low)))
    else:
        x = dim.low + u * (dim.high - dim.low)
    return min(dim.high, max(dim.low, x))  # rounding may step just outside the range
