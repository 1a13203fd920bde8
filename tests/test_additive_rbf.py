"""Additive bumps (``rbf:M:1``): one-dimensional Gaussian bumps per coordinate.  Their
closed-form statistics (forward-mode products per state, also for pairwise features) equal the
generic Jacobian sums,
they fit a sum of one-coordinate shapes no low-order polynomial fits, and they save and load."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import iel
from iel.dynamics import GradientDescent, simulate
from iel.energies import AdditiveRBF, ReferenceEnergy
from iel.energies.features import Fourier, Monomials
from iel.energies.spec import SpecError, parse_energy_spec
from iel.estimators.trajectories import closed_form


def test_spec_and_feature_layout():
    lib = parse_energy_spec("poly:3:1+rbf:5:1", 4).library.adapt(
        np.random.default_rng(0).uniform(-2, 2, size=(500, 4))
    )
    assert lib.n_features == 3 * 4 + 5 * 4
    assert isinstance(lib.parts[1], AdditiveRBF)
    columns = lib.parts[1].feature_coordinates()
    np.testing.assert_array_equal(columns[:, 0], np.repeat(np.arange(4), 5))
    assert np.all(columns[:, 1] == -1)  # each bump depends on one coordinate
    # centres on each coordinate's quantiles, inside the data
    centres = np.asarray(lib.parts[1].centres)
    assert np.all(np.diff(centres, axis=1) > 0) and np.all(np.abs(centres) < 2)
    with pytest.raises(SpecError, match="rbf:M:1"):
        parse_energy_spec("rbf:5:2", 4)
    assert Monomials(3, 3).feature_coordinates() is None  # x0*x1*x2 couples three coordinates
    pairs = Monomials(3, 2).feature_coordinates()  # x0 … x2^2 with x0*x1 at row 4
    np.testing.assert_array_equal(pairs[Monomials(3, 2).names().index("x0*x1")], [0, 1])
    np.testing.assert_array_equal(Fourier(2, 1).feature_coordinates()[:, 0], [0, 1, 0, 1])


@pytest.mark.parametrize("spec", ["poly:3:1+fourier:2+rbf:5:1", "poly:4:2+rbf:3:1"])
def test_sparse_statistics_equal_the_generic_jacobian_sums(spec):
    """Additive features (one coordinate each) and pairwise ones (two): the statistics from
    forward-mode products equal the sums over full Jacobians."""
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-3, 3, size=(700, 5))
    dx, h = 0.1 * rng.standard_normal((700, 5)), rng.uniform(0.005, 0.02, 700)
    lib = parse_energy_spec(spec, 5).library.adapt(x0)
    assert lib.feature_coordinates() is not None
    fast = closed_form.normal_equations(lib, x0, dx, h)
    jac = np.asarray(jax.vmap(lib.jacobian)(jnp.asarray(x0)))  # (K, p, d)
    gram = np.einsum("kpd,kqd->pq", jac * h[:, None, None], jac)
    rhs = -np.einsum("kpd,kd->p", jac, dx)
    np.testing.assert_allclose(fast.gram, gram, rtol=1e-12, atol=1e-12 * np.abs(gram).max())
    np.testing.assert_allclose(fast.rhs, rhs, rtol=1e-12, atol=1e-12 * np.abs(rhs).max())


def test_additive_bumps_fit_a_kinked_sum_of_shapes(tmp_path):
    """The JKOnet* 'flowers' energy Σ x_j + 2 sin(|x_j|^1.2) (infinite curvature at 0) in 5-D:
    the additive bumps fit its force to a few per cent where the additive quartic cannot."""
    energy = ReferenceEnergy("flowers", 5)
    x0 = np.random.default_rng(2).uniform(-4, 4, size=(400, 5))
    data = simulate(energy, GradientDescent(), x0, 5, jax.random.PRNGKey(0), 0.01)
    grid = np.random.default_rng(3).uniform(-3.5, 3.5, size=(1000, 5))
    truth = np.asarray(energy.force(grid))

    def error(model):
        return float(np.sum((np.asarray(model.force(grid)) - truth) ** 2) / np.sum(truth**2))

    bumps = iel.fit(data, "poly:4:1+rbf:16:1", method="onestep")
    quartic = iel.fit(data, "poly:4:1", method="onestep")
    assert error(bumps) < 0.02 < 0.3 < error(quartic)
    bumps.save(tmp_path / "bumps")
    loaded = iel.load(tmp_path / "bumps")
    np.testing.assert_array_equal(np.asarray(loaded.force(grid)), np.asarray(bumps.force(grid)))
