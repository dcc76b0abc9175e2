"""The experiment harness: runs, sweeps, benchmarks, fidelity metrics, plots, tuning, calibration.

Depends on the core (`cachedit`) and the zoo (`cachedit.zoo`); neither imports it. Only the runners, the server and
the tests import from here.
"""
