"""The p-value functions match scipy (used only here, never at run time)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from modelpilot.drift._special import chi2_sf, gammaincc, kolmogorov_sf


@pytest.mark.parametrize("x", [*np.linspace(0.0, 4.0, 81), 1.17999, 1.18001, 6.0, 1e-3])
def test_kolmogorov_sf_matches_kstwobign(x):
    assert kolmogorov_sf(float(x)) == pytest.approx(stats.kstwobign.sf(x), abs=1e-13)


@pytest.mark.parametrize("dof", [1, 2, 3, 7, 30, 250, 4000])
def test_chi2_sf_matches_scipy(dof):
    for x in np.r_[0.0, 1e-9, np.linspace(0.01, 3 * dof + 40, 60)]:
        assert chi2_sf(float(x), dof) == pytest.approx(stats.chi2.sf(x, dof), abs=1e-12, rel=1e-9)


def test_gammaincc_edges():
    assert gammaincc(2.5, 0.0) == 1.0
    assert gammaincc(2.5, float("inf")) == 0.0
    assert gammaincc(0.5, 1e-300) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        gammaincc(0.0, 1.0)
