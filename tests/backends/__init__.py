"""Tests of devicebucket.backends."""
