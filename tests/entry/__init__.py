"""Tests of devicebucket.entry."""
