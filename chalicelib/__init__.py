"""Race Platform: everything that ships to Lambda."""
