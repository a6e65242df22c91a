"""Developer tooling for one machine: the `make run` appliance, the `make run-plain` stack and the embedded
PostgreSQL/Redis they use. Never shipped in the enclave image (tests/test_import_rules.py enforces it)."""
