"""Helpers shared by test modules, one small module per topic.

A test module never imports another test module (tests/test_layout.py checks it): what two of them
share lives here, or in tests/conftest.py when it is a fixture.
"""
