"""Fixtures of the sandbox contract tests: the Credly sandbox in-process (credly_helpers) and
the Docebo sandbox in-process (docebo_sandbox_fixtures), shared by every test module here."""

from credly_helpers import clock, credly, credly_app, credly_state  # noqa: F401  (fixtures)
from docebo_sandbox_fixtures import anon, api, app, demo, state  # noqa: F401  (fixtures)
