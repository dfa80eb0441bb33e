"""Comparison benchmarks: ``python -m rcfast.bench {weekly,combine,train-data,scale,asv} ...``
(``python -m rcfast.bench --help`` lists them, one line each)."""
