"""One module per ``lrnnspec`` subcommand.

Each module defines ``register(subparsers)``, which adds its parser and sets ``func`` (called
with the parsed arguments, returns the exit code) and optionally ``validate`` (returns the
broken rule as a message, or None). Modules import heavy dependencies inside ``func`` so that
``lrnnspec --help`` stays fast.
"""

COMMANDS = ("spec", "bench", "prove", "report", "certify", "replay", "conformance", "campaign", "peers", "train")
