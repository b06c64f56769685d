r"""Certificates that the reduced LoRA-ML loss has a spurious local minimum (THEORY.md section 8).

A certificate is a frozen data object (:class:`Certificate`) that holds the task
matrices, the adapter rank, a candidate point :math:`\mathbf U_0` (float64 values,
i.e. exact dyadic rationals), a radius, the rigorous bounds it relies on, the margins
of the inequalities and the verdict.  :func:`verify_certificate` recomputes every bound
from the stored task matrices and points alone, so a certificate can be checked later,
elsewhere, without the search that produced the candidate.

Two kinds are provided.

Taylor (polynomial) certificate, :func:`taylor_certificate` (:mod:`~landscape.certificates.taylor_arb`)
    THEORY.md section 8, conditions (C1) and (C2), made rigorous and extended to the
    quotient by :math:`O(k)`.  All quantities that enter the verdict are enclosed with
    python-flint ``arb`` balls (see :mod:`landscape._interval`).
Epsilon-net certificate, :func:`epsilon_net_certificate` (:mod:`~landscape.certificates.net`)
    THEORY.md section 8, "Rigorous epsilon-net version", with a tighter Lipschitz bound,
    an up-front size estimate and a refusal (:class:`CertificateTooLarge`) above a
    budget.  The reduced loss is enclosed on the net with outward-rounded vectorised
    interval arithmetic.

Floating-point Taylor certificate, :func:`~landscape.certificates.taylor_fp.fp_taylor_certificate`
    The same inequalities for k = 1 with float64 computations whose rounding errors are
    bounded a priori (:mod:`~landscape.certificates.taylor_fp`), for ``T*d*k`` up to ~10^4.

Rooms: :mod:`~landscape.certificates.data` (the :class:`Certificate` object, its JSON,
:func:`verify_certificate`), :mod:`~landscape.certificates.common` (what the kinds share:
outward rounding to floats, the Taylor radius rule and decision, the check that
recomputed bounds imply the stored claims), :mod:`~landscape.certificates.polish`
(Newton polishing and the witness search, float heuristics whose outputs are only
stored), :mod:`~landscape.certificates.enclosures` (``arb`` enclosures of G, its
gradient and Hessian, and rigorous smallest eigenvalues), and one module per kind.
Each kind registers its verifier with :mod:`~landscape.certificates.data`, so the data
object imports none of them.

What is rigorous, and what is not
---------------------------------
Rigorous (enclosed in ``arb`` at the exact stored float points): :math:`G(\mathbf U_0)`,
:math:`\|\nabla G(\mathbf U_0)\|`, :math:`G(\mathbf W)`, the bound on :math:`m`, the
entries of :math:`S+cYY^\top`, the Cholesky residual and hence the eigenvalue bound,
and every margin.  The epsilon-net certificate adds the loss on the net (outward-
rounded numpy intervals), the covering radius of the actual float grid and the
Lipschitz bound.  Heuristic, and harmless because their outputs are only *stored and
checked*: Newton polishing, the witness search, the choice of :math:`r`, :math:`c`,
:math:`\mu` and of the float Cholesky factor.  Trusted: python-flint/Arb's ball
arithmetic and IEEE-754 round-to-nearest in numpy's elementwise ufuncs.

References
----------
THEORY.md section 8 (certificates), section 5 (reduced loss, Schur complement,
equivalence of local minima of L and G, symmetry).
"""
from .data import (
    ARB_PRECISION,
    VERDICT_LOCAL_MIN,
    VERDICT_NONE,
    VERDICT_SPURIOUS,
    Certificate,
    CertificateNotApplicable,
    CertificateTooLarge,
    verify_certificate,
)
from .net import NET_MAX_POINTS, NetSizeEstimate, epsilon_net_certificate, net_size_estimate
from .polish import find_witness, polish_critical_point
from .taylor_arb import TAYLOR_MAX_DIM, taylor_certificate
from . import taylor_fp  # noqa: F401,E402  (registers the verifier of kind "taylor_fp")

__all__ = [
    "ARB_PRECISION",
    "Certificate",
    "CertificateTooLarge",
    "CertificateNotApplicable",
    "NetSizeEstimate",
    "VERDICT_SPURIOUS",
    "VERDICT_LOCAL_MIN",
    "VERDICT_NONE",
    "TAYLOR_MAX_DIM",
    "NET_MAX_POINTS",
    "taylor_certificate",
    "epsilon_net_certificate",
    "net_size_estimate",
    "verify_certificate",
    "polish_critical_point",
    "find_witness",
]
