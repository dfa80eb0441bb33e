"""Building blocks of ``rcfast.combine`` (the ingest step); see :mod:`rcfast.combine`."""
