"""Tests of devicebucket.web."""
