"""The run pipeline: config → plan → load → snapshot → prepare → edit → validate → decide.

Importing this package is cheap; :mod:`invarlock.runner.runner` pulls in the rest.
"""
