"""rcfast: weekly per-product panels from huge review dumps, fast."""

__version__ = "0.1.0"
SPEC_VERSION = "1"

__all__ = ["SPEC_VERSION", "__version__"]
