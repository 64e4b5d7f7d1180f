"""How Race Platform runs: the local stack and the AWS templates. Never shipped to Lambda."""
