"""Vendor simulators: local fakes of each vendor API, served over loopback HTTP.

They exist for tests, `syncd simulate KIND` and `syncd demo`, so the real daemon can
run without vendor accounts. Each module exposes `default()` (a simulator with one
organisation and its demo credentials) and `serve(host, port, *, sim=...)`. Nothing on
the sync path (runner, apply, plan, vendors, daemon) may import this package.
"""

SIMULATORS: dict[str, str] = {
    "salesask": "syncd.simulators.salesask",
    "leadsquared": "syncd.simulators.leadsquared",
    "ysuite": "syncd.simulators.ysuite",
    "apptoto": "syncd.simulators.apptoto",
    "salesloft": "syncd.simulators.salesloft",
}
"""Vendor kind -> module path, imported lazily by the command line."""
