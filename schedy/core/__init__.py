"""The pure core: values, events, fold and decisions.

Nothing in this package performs I/O, reads a clock or touches global random
state. Time and randomness come in as arguments.
"""
