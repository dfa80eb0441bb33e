"""Numba kernels over plain ndarrays (values + offsets for groups). No pyarrow in here."""
