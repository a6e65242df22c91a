"""The relayer's storage layer: PostgreSQL + pgvector through one asyncpg pool.

Import the submodules: ``pool`` (connect / Database), ``migrations``, ``errors`` (the tree and the
asyncpg mapping), and one repository per table: ``vectors`` (+ ``vector_search``), ``jobs``,
``quota``, ``namespaces``, ``delegate_cache``, ``accounts``.
"""
