"""rcfast.kernels.time's calendar helpers: weeks start on Monday, week 0 on 1969-12-29."""

import datetime as dt

import numpy as np

from rcfast.kernels.time import date_of_week, days_to_week, week_of_date, week_to_days


def test_week_zero_and_its_neighbours():
    assert date_of_week(0) == dt.date(1969, 12, 29)
    assert week_of_date(dt.date(1969, 12, 28)) == -1  # a Sunday
    assert week_of_date(dt.date(1969, 12, 29)) == 0  # a Monday
    assert week_of_date(dt.date(1970, 1, 4)) == 0
    assert week_of_date(dt.date(1970, 1, 5)) == 1


def test_every_day_lies_in_the_week_of_its_monday():
    day = dt.date(1955, 1, 1)
    while day < dt.date(1985, 1, 1):
        monday = date_of_week(week_of_date(day))
        assert monday.weekday() == 0 and 0 <= (day - monday).days < 7
        day += dt.timedelta(days=5)


def test_array_forms_agree_with_the_date_forms():
    days = np.arange(-3000, 3000)
    weeks = days_to_week(days)
    epoch = dt.date(1970, 1, 1)
    assert weeks.tolist()[::97] == [week_of_date(epoch + dt.timedelta(days=int(d)))
                                    for d in days[::97]]
    starts = week_to_days(weeks)
    assert np.all((days - starts >= 0) & (days - starts < 7))
