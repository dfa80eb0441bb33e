from rcfast import errors
from rcfast.weekly import read as weekly_read
from rcfast.ingest import sources


def test_one_input_error_class():
    # `except InputError` in any CLI catches what the reader, the ingest and the weekly step raise
    assert weekly_read.InputError is errors.InputError
    assert sources.InputError is errors.InputError
    assert sources.StrictFailure is errors.StrictFailure
