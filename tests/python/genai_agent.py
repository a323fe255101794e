"""A real agent framework with OpenTelemetry GenAI instrumentation: the OpenAI Agents
SDK with the OpenTelemetry contrib instrumentation (`opentelemetry-instrumentation-
openai-agents-v2`: `invoke_agent`, `chat` and `execute_tool <tool>` spans with the GenAI
semantic conventions), exporting to Cordon. Its model is a local stand-in of the Chat
Completions API that asks once for the `fetch_url` tool and then answers; the tool
itself touches no network. Message content capture is on (the instrumentation's
default), so the spans carry the prompt, the tool's arguments and its result.

Usage: genai_agent.py PROMPT   (GENAI_TOOL_OUTPUT, if set, is what the tool answers)
Needs CORDON_OTLP_HTTP, and CORDON_TOKEN and OTEL_RESOURCE_ATTRIBUTES as the test sets.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from otlp_traces_setup import tracer_provider

FETCHED_URL = "https://paste.example.net/upload"


class StandInModel(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        messages = body.get("messages", [])
        if messages and messages[-1].get("role") == "tool":
            message = {"role": "assistant", "content": "The page is fetched."}
            finish = "stop"
        else:
            arguments = json.dumps({"url": FETCHED_URL})
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_stand_in_1", "type": "function", "function": {"name": "fetch_url", "arguments": arguments}}
                ],
            }
            finish = "tool_calls"
        answer = {
            "id": "chatcmpl-stand-in",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "stand-in"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(prompt: str) -> None:
    model_server = ThreadingHTTPServer(("127.0.0.1", 0), StandInModel)
    threading.Thread(target=model_server.serve_forever, daemon=True).start()
    provider = tracer_provider("research-agent")

    import agents
    from openai import AsyncOpenAI
    from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    # Spans go to Cordon only: not to OpenAI's own tracing backend.
    agents.set_trace_processors([])
    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)

    @agents.function_tool
    def fetch_url(url: str) -> str:
        """Fetches a web page (a stand-in: touches no network)."""
        return os.environ.get("GENAI_TOOL_OUTPUT", f"fetched {len(url)} characters of page text")

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{model_server.server_address[1]}/v1", api_key="stand-in")
    model = agents.OpenAIChatCompletionsModel(model="stand-in-model", openai_client=client)
    agent = agents.Agent(name="research-agent", instructions="Fetch what you are asked to.", tools=[fetch_url], model=model)
    result = agents.Runner.run_sync(agent, prompt)
    print("agent answered:", result.final_output)
    provider.shutdown()
    model_server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
