"""Value buckets: a small integer per latency and time to first token, stored with each span, so a percentile over
a million spans is a `GROUP BY` (a histogram) and a sort of one bucket's values, not a sort of them all.

The bucket of a value is non-decreasing in the value (exactly: no logarithm, only `math.frexp`'s exponent and the
mantissa's top bits), so the k-th smallest value of a window lies in the bucket where the histogram's running count
reaches k; reading that bucket's values gives the exact percentile. Each power of two is cut into `PER_OCTAVE`
linear buckets: a bucket is 0.8% to 1.6% of its values wide. Stored in 2 bytes (|bucket| ≤ 32,767).
"""

from __future__ import annotations

import math

PER_OCTAVE = 64
_LOWEST_EXPONENT = -255  # values below 2**-256 share the lowest bucket, above 2**255 the highest (still monotone)
_HIGHEST_EXPONENT = 255
TOP = (_HIGHEST_EXPONENT - _LOWEST_EXPONENT + 2) * PER_OCTAVE - 1  # 32,767: the highest bucket, infinity's


def value_bucket(value: float | None) -> int | None:
    """The bucket of `value` (None for None or NaN, which SQLite stores as NULL); 0 for 0, negative below 0."""
    if value is None or value != value:
        return None
    if value == 0:
        return 0
    mantissa, exponent = math.frexp(abs(value))  # |value| = mantissa * 2**exponent, 0.5 <= mantissa < 1
    if math.isinf(value) or exponent > _HIGHEST_EXPONENT:
        bucket = TOP
    elif exponent < _LOWEST_EXPONENT:
        bucket = PER_OCTAVE  # the lowest octave's first bucket
    else:
        bucket = (exponent - _LOWEST_EXPONENT + 1) * PER_OCTAVE + int((mantissa - 0.5) * 2 * PER_OCTAVE)
    return bucket if value > 0 else -bucket
