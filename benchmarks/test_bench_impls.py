"""The impls benchmark suite (lives in the package so `lrnnspec bench` runs it when installed)."""

from lrnnspec.bench.suite import *  # noqa: F401,F403
