"""HTTP route handlers, one module per area. Each exposes ``routes(services) -> list[Route]``."""
