"""rcfast: weekly per-product panels from huge review dumps, fast.

Importing rcfast changes nothing global (environment, import system, garbage collector):
what a command-line run tunes, its ``main`` does.
"""

__version__ = "0.1.0"
SPEC_VERSION = "1"

__all__ = ["SPEC_VERSION", "__version__"]
