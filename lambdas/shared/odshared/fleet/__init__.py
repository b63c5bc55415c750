"""The fleet's data in the cloud: the counts ledger's tables and named queries."""
