"""HTTP blueprints, one per resource: parse the request, call the domain, shape the answer."""
