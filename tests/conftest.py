"""Shared test settings: one hypothesis profile for the whole suite.

The "ci" profile (the default) keeps property tests quick and deterministic enough for CI:
no per-example deadline (the first call of an op may import a backend) and few examples.
Select another with ``pytest --hypothesis-profile=thorough``.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=20,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", deadline=None, max_examples=200)
settings.load_profile("ci")
