"""The numpy-ma-free median and percentile equal numpy's to the last bit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from guardian._numeric import median, percentile


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 100, 101, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_and_percentile_equal_numpy(n: int, dtype: type) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        x = (rng.standard_normal(n) * rng.uniform(1e-6, 1e3)).astype(dtype)
        assert median(x) == float(np.median(x))
        wide = x.astype(np.float64)
        for q in (0, 5, 50, 90, 95, 99.5, 100, *rng.uniform(0, 100, 5)):
            assert percentile(wide, q) == float(np.percentile(wide, q)), q


def test_neither_imports_numpy_ma() -> None:
    code = (
        "import sys, numpy as np\n"
        "from guardian._numeric import median, percentile\n"
        "median(np.arange(5.0)); percentile(np.arange(5.0), 95)\n"
        "print('numpy.ma' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
