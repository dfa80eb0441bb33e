"""Comparison benchmarks: ``python -m rcfast.bench {weekly,combine,train-data} ...``."""
