"""User-uploaded JavaScript plugins: manifests, the V8 sandbox, its compile cache and host capabilities."""
