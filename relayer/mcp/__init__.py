"""MCP for agents at /api/mcp (streamable HTTP, the official ``mcp`` package) and its OAuth 2.1 server."""
