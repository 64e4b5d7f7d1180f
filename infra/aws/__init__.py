"""The AWS deployment: templates generated from chalicelib/resources.py, packaging with Chalice."""
