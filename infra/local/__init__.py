"""The local dev stack: embedded PostgreSQL, AWS emulator, gateways, SQS poller, scheduler."""
