"""The platform's rules; imports neither chalice nor boto3."""
