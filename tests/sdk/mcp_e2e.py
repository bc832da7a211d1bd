"""The official MCP Python SDK against Stockyard's /mcp, unchanged but for URL and key.

argv: the /mcp URL and a client key. Over Streamable HTTP: lists tools, calls an allowed tool and
a refused one; over the older SSE transport (/mcp/sse): calls the allowed tool again. Prints what
it saw as one JSON object for tests/mcp_sdk.rs to check.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            tools = await client.list_tools()
            names = sorted(tool.name for tool in tools.tools)
            result = await client.call_tool("local__echo", {"text": "from python"})
            texts = [part.text for part in result.content]
            try:
                refused = await client.call_tool("local__leak_secret", {})
                refusal = {"raised": False, "is_error": refused.is_error,
                           "text": [part.text for part in refused.content]}
            except Exception as error:  # the SDK raises JSON-RPC errors
                refusal = {"raised": True, "message": str(error)}
    # The older HTTP+SSE transport, for clients that still speak only it.
    sse_url = url.rsplit("/mcp", 1)[0] + "/mcp/sse"
    async with Client(sse_client(sse_url, headers=headers)) as client:
        old = await client.call_tool("local__echo", {"text": "over sse"})
        sse_texts = [part.text for part in old.content]
    print(json.dumps({"tools": names, "echo": texts, "refusal": refusal, "sse_echo": sse_texts}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
