"""The model zoo: offline replicas of every supported family, the embedded tiny models, their data and weights.

Depends on the core (`cachedit`); the core never imports it.
"""
