"""Seeded generator of Amazon-Reviews-2023-like review tables (the demo data and benchmark input).

What it imitates, and why each piece matters for the weekly panel:

* **Product popularity** is a continuous Zipf law (exponent 1) over a catalog of
  ``n_rows / 12`` products: ~12 reviews per catalog product on average, the top 1 % of products
  hold about half of all reviews, and the most popular products have tens of thousands
  (that skew is what makes per-product work unbalanced).
* **Launch dates** are mostly 2012-2023 with a thin tail back to 1998; each product's review
  intensity rises over its first month and decays (see life cycles below), so
  products have long, gappy weekly histories. Reviews end at 2023-09-30 like the 2023 dump,
  and a product keeps only the reviews of its life before that end: one launched two months
  earlier has two months' worth (version 3 gave every product its whole lifetime's reviews,
  crammed into the time left for recent launches).
* **Seasonality**: December and January peaks and a small day-of-week effect, by thinning.
* **Popularity waves and launch ramps**: real products' review rates rise and fall with
  promotions, competitors and fashions, by tens of percent over a few months, and build
  up over the first month after launch. Each product's log-intensity carries a smooth random
  function of time (a Gaussian process approximated by random Fourier features, standard
  deviation 0.3, length scale ~10 weeks) and is ramped by ``1 - exp(-age / ~1 month)``. The
  parameters come from a hash of the product index, so they cost no memory, and
  ``train/oracle_floor.py`` recomputes the exact expected counts.
* **Life cycles**: the decay after launch has a median scale of 90 days (lognormal per
  product; 30 % of a product's reviews follow a 5x slower tail), so most products' reviews rise
  and fade within months, as consumer goods' do. Generator version 2 had a 300-day median and
  neither ramps nor waves: every product's rate was a slow smooth decay that a 12-week moving
  average tracks almost perfectly, so no forecaster could show skill on it (not even the true
  rate beat the moving averages by 10 % in RMSSE; see docs/training.md).
* **Ratings** are integers 1-5 from an ordered logit around a per-product quality: J-shaped,
  about 60 % five stars and 10 % one star, as on Amazon.
* **Helpful votes** are 0 for ~72 % of reviews, Pareto-tailed otherwise; **verified** is ~88 %
  true; **text lengths** are lognormal; **categories** follow the 2023 dump's category sizes.
* Timestamps are epoch milliseconds with real sub-second parts.

Determinism: rows are drawn in fixed internal blocks of :data:`BLOCK_ROWS` rows, each from its own
``SeedSequence([seed, block])``, so the table depends on ``(n_rows, seed, n_products)`` only, never
on ``chunk_rows``. Everything is vectorized numpy/pyarrow; memory is bounded by one chunk plus the
product table (~30 bytes per catalog product).

Modules: :mod:`~rcfast.synth.catalog` (products, ids, popularity), :mod:`~rcfast.synth.lifecycle`
(when a product's reviews come), :mod:`~rcfast.synth.reviews` (the rows of one RNG block),
:mod:`~rcfast.synth.string_columns` (ids and texts as Arrow strings),
:mod:`~rcfast.synth.generator` (:func:`generate_batches`), :mod:`~rcfast.synth.writers`
(Parquet and JSON-lines files), :mod:`~rcfast.synth.demo` (the cached demo dataset) and
:mod:`~rcfast.synth.cli` (``python -m rcfast.synth``).
"""

from rcfast.synth.cli import main
from rcfast.synth.demo import demo_parquet
from rcfast.synth.generator import BLOCK_ROWS, GENERATOR_VERSION, generate_batches
from rcfast.synth.writers import write_jsonl, write_parquet

# Names that the benchmarks, the expected-count oracle (train/oracle_floor.py) and the tests use
# as ``synth.name``, private ones included: the oracle recomputes the generator's internals.
from rcfast.synth.catalog import _END_MS as _END_MS
from rcfast.synth.catalog import _LAUNCH_END_MS as _LAUNCH_END_MS
from rcfast.synth.catalog import _MS_PER_DAY as _MS_PER_DAY
from rcfast.synth.catalog import MAX_ID_INDEX as MAX_ID_INDEX
from rcfast.synth.catalog import _catalog as _catalog
from rcfast.synth.catalog import _resolve_products as _resolve_products
from rcfast.synth.catalog import zipf_share as zipf_share
from rcfast.synth.demo import default_cache_dir as default_cache_dir
from rcfast.synth.lifecycle import _DOW_WEIGHT as _DOW_WEIGHT
from rcfast.synth.lifecycle import _FIRST_DAY as _FIRST_DAY
from rcfast.synth.lifecycle import _MONTH_WEIGHT as _MONTH_WEIGHT
from rcfast.synth.lifecycle import _RAMP_DAYS as _RAMP_DAYS
from rcfast.synth.lifecycle import _TAIL_MULT as _TAIL_MULT
from rcfast.synth.lifecycle import _TAIL_SHARE as _TAIL_SHARE
from rcfast.synth.lifecycle import _day_weight as _day_weight
from rcfast.synth.lifecycle import _dynamics as _dynamics
from rcfast.synth.lifecycle import _ramp_days as _ramp_days
from rcfast.synth.lifecycle import life_in_data as life_in_data
from rcfast.synth.reviews import _draw_products as _draw_products

__all__ = [
    "BLOCK_ROWS",
    "GENERATOR_VERSION",
    "demo_parquet",
    "generate_batches",
    "main",
    "write_jsonl",
    "write_parquet",
]
