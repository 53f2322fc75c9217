"""Tests of devicebucket.core."""
