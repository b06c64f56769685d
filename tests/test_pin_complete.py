"""Route 2's certificate of one end (``landscape/enumeration/_complete.py``): the 256-bit
fallback is taken only where float Newton's point fails Krawczyk's test, and a caller's
float Newton point is used as given."""
from __future__ import annotations

import numpy as np
from sympy.polys.domains import QQ
from sympy.polys.rings import ring

from landscape.enumeration._complete import certify_solution
from landscape.enumeration._krawczyk import CompiledSystem

R, x, y = ring("x,y", QQ)
# x^2 - 2 = 0, y = x: two simple, well-conditioned real roots +-sqrt(2)
WELL = CompiledSystem([x**2 - 2, y - x], [x, y])


def test_a_well_conditioned_root_is_proved_without_the_precise_fallback():
    stats = {}
    p = np.array([1.4 + 1e-9j, 1.41 - 1e-9j])
    kr, kind, zero = certify_solution(WELL, p, 1, 2, stats=stats)
    assert kind == "real" and zero == [] and stats == {}
    assert abs(kr.center[0].real - np.sqrt(2)) <= kr.radius and kr.radius < 1e-12


def test_a_callers_newton_point_is_used_as_given():
    p = np.array([1.4 + 0j, 1.4 + 0j])
    q = WELL.newton(p)
    a = certify_solution(WELL, p, 1, 2)
    b = certify_solution(WELL, p, 1, 2, polished=q)
    assert a[1] == b[1] == "real" and np.array_equal(a[0].center, b[0].center) and a[0].radius == b[0].radius
    # a non-finite point from the caller means "float Newton failed": only the precise route is left
    stats = {}
    c = certify_solution(WELL, p, 1, 2, polished=np.full(2, np.nan), stats=stats)
    assert c[1] == "real" and stats == {"precise_newton": 1}
    assert certify_solution(WELL, p, 1, 2, polished=np.full(2, np.nan), precise=False) == (None, None, [])
