"""A real MCP client and server (PyPI `mcp` 2.x, whose SDK emits the OpenTelemetry MCP
spans itself: `tools/call <tool>` on the server, `MCP send tools/call <tool>` on the
client, with `mcp.method.name`, `gen_ai.tool.name`, `jsonrpc.request.id`), each
exporting its spans to Cordon. The client starts the server over stdio and calls its
`read_file` tool once; the trace context crosses in `_meta`, so both sides' spans
share one trace.

Usage: mcp_tools.py            (the client; starts `mcp_tools.py server` itself)
Needs CORDON_OTLP_HTTP, and CORDON_TOKEN and OTEL_RESOURCE_ATTRIBUTES as the test sets.
"""

import asyncio
import os
import sys

from otlp_traces_setup import tracer_provider


def serve() -> None:
    provider = tracer_provider("mcp-files-server")
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("files")

    @server.tool()
    def read_file(path: str) -> str:
        """Reads a file (a stand-in: answers with its length only)."""
        return f"{len(path)} bytes"

    try:
        server.run("stdio")
    finally:
        provider.shutdown()


async def call() -> None:
    provider = tracer_provider("mcp-demo-client")
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {name: value for name, value in os.environ.items() if name.startswith(("CORDON_", "OTEL_"))}
    env["PYTHONPATH"] = os.path.dirname(os.path.abspath(__file__))
    params = StdioServerParameters(command=sys.executable, args=[os.path.abspath(__file__), "server"], env=env)
    async with Client(params) as client:
        result = await client.call_tool("read_file", {"path": "/home/alice/notes.txt"})
        print("tool answered:", result.content[0].text if result.content else result)
    provider.shutdown()


if __name__ == "__main__":
    if sys.argv[1:] == ["server"]:
        serve()
    else:
        asyncio.run(call())
