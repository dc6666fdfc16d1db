"""lrnnspec.training — the papers' state-tracking experiments at CPU scale, on the project's own impls.

Modules, one job each: :mod:`.tasks` (seeded generators: parity, modular arithmetic mod 5 without
brackets, the S3 / S4 / A5 / S5 word problems; scaled accuracy), :mod:`.models` (embedding → LRNN
blocks on :mod:`lrnnspec.impls`' chunk forms → readout, eigenvalue range as a switch), :mod:`.loop`
(one deterministic AdamW run and its evaluation at several test lengths), :mod:`.grid` (the declared
grid × seeds, its records and cache), :mod:`.report` (reports/trained.md, figures, the targets).
Command line: ``lrnnspec train`` and ``lrnnspec report trained``.
"""
