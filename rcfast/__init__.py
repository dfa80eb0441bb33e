"""rcfast: weekly per-product panels from huge review dumps, fast.

Importing rcfast changes nothing global (environment, import system, garbage collector):
what a command-line run tunes, its ``main`` does.
"""

__version__ = "0.1.0"
SPEC_VERSION = "1"

__all__ = ["SPEC_VERSION", "__version__", "weekly_panel"]


def __getattr__(name: str):
    # the API's modules load on first use: ``import rcfast`` stays cheap
    if name == "weekly_panel":
        from rcfast.weekly.api import weekly_panel

        return weekly_panel
    if name == "combine":  # the module: rcfast.combine.combine(inputs, out, ...) is the API
        import importlib

        return importlib.import_module("rcfast.combine")
    raise AttributeError(f"module 'rcfast' has no attribute {name!r}")
