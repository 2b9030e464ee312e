"""Flash-sale simulation: a seeded workload, a driver, an independent checker, a report.

`invsync demo` and `invsync loadtest` are built from these parts; each module
has one job so the checker never shares state with what it checks.
"""
