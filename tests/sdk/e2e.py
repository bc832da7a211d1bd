"""The official OpenAI and Anthropic Python SDKs, unchanged but for base URL and key, against Stockyard.

Run by tests/sdk.rs, which starts the proxy with `openai` and `anthropic` pointing at two mock
upstreams (crates/mock-upstream) and passes the proxy's address in STOCKYARD_URL. Every answer below
is the mock's deterministic one: the text "Hello from the mock upstream.", a `weather` call with
{"city": "Paris"} when the tool choice forces one, a signed thinking block when thinking is on.

Each check prints one line (`ok` or `FAIL` with the reason); every check runs even after a failure,
and the script exits 1 if any failed. The requests go out in a fixed order, and tests/sdk.rs
asserts on the trace rows in that order: keep EXPECTED_TRACES there in step with this file.
"""

import json
import math
import os
import sys
import traceback
import warnings

import anthropic
import openai

URL = os.environ["STOCKYARD_URL"].rstrip("/")
TEXT = "Hello from the mock upstream."
CLAUDE = "claude-sonnet-4-5"
GPT = "gpt-4o-mini"
UNKNOWN = "no-such-model"

# The SDK warns that this model reaches end-of-life at Anthropic; the mock doesn't care, and the
# name matches the proxy's other Anthropic tests and its price table.
warnings.filterwarnings("ignore", message=f"The model '{CLAUDE}' is deprecated")

KEY = os.environ["STOCKYARD_CLIENT_KEY"]
oai = openai.OpenAI(base_url=URL + "/v1", api_key=KEY)
# The Anthropic SDK sends its key in `x-api-key`, which Stockyard accepts as the client key.
ant = anthropic.Anthropic(base_url=URL, api_key=KEY)

OPENAI_WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ANTHROPIC_WEATHER = {
    "name": "weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def user(text):
    return [{"role": "user", "content": text}]


failures = []


def check(name):
    """Runs the decorated function at once as one named check and prints its outcome."""

    def run(fn):
        try:
            fn()
        except AssertionError as e:
            failures.append(name)
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # an SDK error is a failed check too, with its type and body
            failures.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
        else:
            print(f"ok   {name}", flush=True)
        return fn

    return run


print(f"openai {openai.__version__}, anthropic {anthropic.__version__}, proxy {URL}", flush=True)


# 1-4: the OpenAI SDK calling an OpenAI model.


@check("openai sdk: chat.completions.create")
def _():
    r = oai.chat.completions.create(model=GPT, messages=user("Say hello"))
    content = r.choices[0].message.content
    assert content == TEXT, f"content {content!r}, expected {TEXT!r}"
    assert r.choices[0].finish_reason == "stop", f"finish_reason {r.choices[0].finish_reason!r}"
    assert r.usage is not None and r.usage.prompt_tokens > 0, f"usage {r.usage!r}"
    assert r.usage.completion_tokens > 0, f"usage {r.usage!r}"


@check("openai sdk: streamed chat with include_usage")
def _():
    stream = oai.chat.completions.create(
        model=GPT,
        messages=user("Say hello"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks, "no chunks"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT, f"deltas concatenate to {text!r}, expected {TEXT!r}"
    last = chunks[-1]
    assert last.usage is not None, f"the last chunk has no usage: {last!r}"
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0, f"usage {last.usage!r}"
    assert last.choices == [], f"the usage chunk has choices: {last.choices!r}"


@check("openai sdk: tool call, tool_choice=required")
def _():
    r = oai.chat.completions.create(
        model=GPT,
        messages=user("Weather in Paris?"),
        tools=[OPENAI_WEATHER],
        tool_choice="required",
    )
    message = r.choices[0].message
    assert message.tool_calls, f"no tool_calls in {message!r}"
    call = message.tool_calls[0]
    assert call.function.name == "weather", f"function name {call.function.name!r}"
    args = json.loads(call.function.arguments)
    assert args == {"city": "Paris"}, f"arguments {args!r}"
    assert r.choices[0].finish_reason == "tool_calls", f"finish_reason {r.choices[0].finish_reason!r}"


@check("openai sdk: streamed tool call (chat.completions.stream helper)")
def _():
    with oai.chat.completions.stream(
        model=GPT,
        messages=user("Weather in Paris?"),
        tools=[OPENAI_WEATHER],
        tool_choice="required",
    ) as stream:
        arg_deltas = [
            e.arguments_delta for e in stream if e.type == "tool_calls.function.arguments.delta"
        ]
        final = stream.get_final_completion()
    assert len(arg_deltas) >= 2, f"arguments came in {len(arg_deltas)} delta(s), expected pieces"
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "weather", f"function name {call.function.name!r}"
    assert json.loads(call.function.arguments) == {"city": "Paris"}, f"arguments {call.function.arguments!r}"
    assert json.loads("".join(arg_deltas)) == {"city": "Paris"}, f"deltas {arg_deltas!r}"
    assert final.choices[0].finish_reason == "tool_calls", f"finish_reason {final.choices[0].finish_reason!r}"


@check("openai sdk: embeddings (base64 by default, decoded by the SDK)")
def _():
    r = oai.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    assert len(r.data) == 2, f"{len(r.data)} embeddings, expected 2"
    vectors = [d.embedding for d in r.data]
    for i, v in enumerate(vectors):
        assert isinstance(v, list) and v, f"embedding {i} is {type(v).__name__}: {v!r}"
        assert all(isinstance(x, float) for x in v), f"embedding {i} holds non-floats: {v!r}"
        # The mock's vectors have unit length: a wrong base64 decoding would not.
        norm = math.sqrt(sum(x * x for x in v))
        assert abs(norm - 1.0) < 1e-3, f"embedding {i} has length {norm}, expected 1: {v!r}"
    assert vectors[0] != vectors[1], "both inputs got the same vector"
    assert r.usage.prompt_tokens > 0, f"usage {r.usage!r}"


# 5: the OpenAI SDK calling a Claude model (translated by the Anthropic adapter).


@check("openai sdk -> claude: chat.completions.create")
def _():
    r = oai.chat.completions.create(model=CLAUDE, messages=user("Say hello"))
    content = r.choices[0].message.content
    assert content == TEXT, f"content {content!r}, expected {TEXT!r}"
    assert r.usage is not None and r.usage.prompt_tokens > 0, f"usage {r.usage!r}"


@check("openai sdk -> claude: streamed chat")
def _():
    stream = oai.chat.completions.create(
        model=CLAUDE,
        messages=user("Say hello"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT, f"deltas concatenate to {text!r}, expected {TEXT!r}"
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage and usage[-1].completion_tokens > 0, f"no usage in {len(chunks)} chunks"


# 6: the Anthropic SDK calling Claude.


@check("anthropic sdk: messages.create")
def _():
    m = ant.messages.create(model=CLAUDE, max_tokens=256, messages=user("Say hello"))
    assert m.content and m.content[0].type == "text", f"content {m.content!r}"
    assert m.content[0].text == TEXT, f"text {m.content[0].text!r}, expected {TEXT!r}"
    assert m.stop_reason == "end_turn", f"stop_reason {m.stop_reason!r}"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0, f"usage {m.usage!r}"


@check("anthropic sdk: messages.stream, get_final_message")
def _():
    with ant.messages.stream(model=CLAUDE, max_tokens=256, messages=user("Say hello")) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == TEXT, f"text_stream gave {streamed!r}, expected {TEXT!r}"
    text = "".join(b.text for b in final.content if b.type == "text")
    assert text == TEXT, f"final message text {text!r}, expected {TEXT!r}"
    assert final.stop_reason == "end_turn", f"stop_reason {final.stop_reason!r}"
    assert final.usage.output_tokens > 0, f"usage {final.usage!r}"


@check("anthropic sdk: tool use, tool_choice any")
def _():
    m = ant.messages.create(
        model=CLAUDE,
        max_tokens=256,
        messages=user("Weather in Paris?"),
        tools=[ANTHROPIC_WEATHER],
        tool_choice={"type": "any"},
    )
    uses = [b for b in m.content if b.type == "tool_use"]
    assert uses, f"no tool_use block in {m.content!r}"
    assert uses[0].name == "weather", f"tool name {uses[0].name!r}"
    assert uses[0].input == {"city": "Paris"}, f"tool input {uses[0].input!r}"
    assert m.stop_reason == "tool_use", f"stop_reason {m.stop_reason!r}"


@check("anthropic sdk: thinking block with signature")
def _():
    m = ant.messages.create(
        model=CLAUDE,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=user("Think, then say hello"),
    )
    assert m.content, "no content"
    first = m.content[0]
    assert first.type == "thinking", f"first block is {first.type!r}, expected 'thinking': {m.content!r}"
    assert first.thinking, f"empty thinking text: {first!r}"
    assert first.signature, f"empty signature: {first!r}"
    text = "".join(b.text for b in m.content if b.type == "text")
    assert text == TEXT, f"text {text!r}, expected {TEXT!r}"


@check("anthropic sdk: messages.count_tokens")
def _():
    r = ant.messages.count_tokens(model=CLAUDE, messages=user("Hello world"))
    assert r.input_tokens > 0, f"input_tokens {r.input_tokens!r}"


# 7: the Anthropic SDK calling an OpenAI model (translated into chat completions).


@check("anthropic sdk -> gpt: messages.create")
def _():
    m = ant.messages.create(model=GPT, max_tokens=256, messages=user("Say hello"))
    assert m.content and m.content[0].type == "text", f"content {m.content!r}"
    assert m.content[0].text == TEXT, f"text {m.content[0].text!r}, expected {TEXT!r}"
    assert m.stop_reason == "end_turn", f"stop_reason {m.stop_reason!r}"
    assert m.usage.input_tokens > 0, f"usage {m.usage!r}"


@check("anthropic sdk -> gpt: messages.stream")
def _():
    with ant.messages.stream(model=GPT, max_tokens=256, messages=user("Say hello")) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == TEXT, f"text_stream gave {streamed!r}, expected {TEXT!r}"
    text = "".join(b.text for b in final.content if b.type == "text")
    assert text == TEXT, f"final message text {text!r}, expected {TEXT!r}"
    assert final.usage.output_tokens > 0, f"usage {final.usage!r}"


# 8: the OpenAI SDK's Responses API calling an OpenAI model (translated into chat completions;
# Stockyard keeps the conversation for previous_response_id and GET /v1/responses/{id}).

# What a later check needs from an earlier one (a check that fails leaves nothing here).
kept = {}


@check("openai sdk: responses.create with instructions")
def _():
    r = oai.responses.create(model=GPT, instructions="Be brief.", input="Say hello")
    assert r.output_text == TEXT, f"output_text {r.output_text!r}, expected {TEXT!r}"
    assert r.id.startswith("resp_"), f"id {r.id!r}"
    assert r.status == "completed", f"status {r.status!r}"
    assert r.usage is not None and r.usage.input_tokens > 0, f"usage {r.usage!r}"
    assert r.usage.output_tokens > 0, f"usage {r.usage!r}"
    kept["first"] = r


@check("openai sdk: responses.stream, get_final_response")
def _():
    with oai.responses.stream(model=GPT, input="Say hello") as stream:
        types = []
        deltas = []
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "response.created" in types, f"no response.created in {types!r}"
    assert "response.completed" in types, f"no response.completed in {types!r}"
    assert types[0] == "response.created", f"first event {types[0]!r}"
    assert types[-1] == "response.completed", f"last event {types[-1]!r}"
    streamed = "".join(deltas)
    assert streamed == TEXT, f"deltas concatenate to {streamed!r}, expected {TEXT!r}"
    assert final.output_text == streamed, f"final output_text {final.output_text!r}, deltas {streamed!r}"
    assert final.id.startswith("resp_"), f"id {final.id!r}"
    assert final.usage is not None and final.usage.output_tokens > 0, f"usage {final.usage!r}"


@check("openai sdk: responses.create with previous_response_id, responses.retrieve")
def _():
    first = kept.get("first")
    assert first is not None, "no response from `responses.create with instructions` to continue"
    r = oai.responses.create(model=GPT, previous_response_id=first.id, input="And again")
    assert r.output_text == TEXT, f"output_text {r.output_text!r}, expected {TEXT!r}"
    assert r.id != first.id, f"the second turn reused the first id {r.id!r}"
    assert r.previous_response_id == first.id, f"previous_response_id {r.previous_response_id!r}"
    # Not traced: answered from Stockyard's own store.
    stored = oai.responses.retrieve(first.id)
    assert stored.id == first.id, f"retrieved id {stored.id!r}, expected {first.id!r}"
    assert stored.output_text == first.output_text, (
        f"retrieved output_text {stored.output_text!r}, created {first.output_text!r}"
    )


# 9: the Responses API calling Claude with a function tool, and the function's output sent back.

RESPONSES_WEATHER = {
    "type": "function",
    "name": "weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@check("openai sdk -> claude: responses.create with a function tool, then its output")
def _():
    r = oai.responses.create(
        model=CLAUDE,
        input="Weather in Paris?",
        tools=[RESPONSES_WEATHER],
        tool_choice="required",
    )
    calls = [item for item in r.output if item.type == "function_call"]
    assert calls, f"no function_call item in {r.output!r}"
    call = calls[0]
    assert call.name == "weather", f"function name {call.name!r}"
    assert json.loads(call.arguments) == {"city": "Paris"}, f"arguments {call.arguments!r}"
    assert call.call_id, f"no call_id: {call!r}"

    answer = oai.responses.create(
        model=CLAUDE,
        previous_response_id=r.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp":21}'}],
    )
    assert answer.output_text == TEXT, f"output_text {answer.output_text!r}, expected {TEXT!r}"
    assert answer.status == "completed", f"status {answer.status!r}"


# 10: errors map to the SDKs' own exception classes.


@check("openai sdk: unknown model raises openai.NotFoundError")
def _():
    try:
        oai.chat.completions.create(model=UNKNOWN, messages=user("hi"))
    except openai.NotFoundError as e:
        assert UNKNOWN in str(e), f"the error doesn't name the model: {e}"
    else:
        raise AssertionError("no error raised")


@check("anthropic sdk: unknown model raises anthropic.NotFoundError")
def _():
    try:
        ant.messages.create(model=UNKNOWN, max_tokens=16, messages=user("hi"))
    except anthropic.NotFoundError as e:
        assert UNKNOWN in str(e), f"the error doesn't name the model: {e}"
    else:
        raise AssertionError("no error raised")


# 11: a module answering in place of a provider (the test-only `test_canned` module): its canned
# canonical stream reaches each SDK in the SDK's own format, streamed and not.

CANNED_MODEL = "canned-model"
CANNED_TEXT = "Canned hello from a module."


@check("openai sdk: a module's canned answer, chat.completions")
def _():
    r = oai.chat.completions.create(model=CANNED_MODEL, messages=user("hi"))
    assert r.choices[0].message.content == CANNED_TEXT, f"content {r.choices[0].message.content!r}"
    assert r.usage.total_tokens == 11, f"usage {r.usage!r}"


@check("openai sdk: a module's canned answer, chat.completions stream")
def _():
    stream = oai.chat.completions.create(
        model=CANNED_MODEL, messages=user("hi"), stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage:
            usage = chunk.usage
    assert text == CANNED_TEXT, f"streamed {text!r}"
    assert usage is not None and usage.total_tokens == 11, f"usage {usage!r}"


@check("openai sdk: a module's canned answer, responses stream")
def _():
    text, completed = "", None
    with oai.responses.stream(model=CANNED_MODEL, input="hi") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.completed":
                completed = event.response
    assert text == CANNED_TEXT, f"streamed {text!r}"
    assert completed is not None and completed.output_text == CANNED_TEXT, f"completed {completed!r}"


@check("anthropic sdk: a module's canned answer, messages.create")
def _():
    m = ant.messages.create(model=CANNED_MODEL, max_tokens=64, messages=user("hi"))
    assert m.content[0].text == CANNED_TEXT, f"content {m.content!r}"
    assert m.usage.output_tokens == 6, f"usage {m.usage!r}"


@check("anthropic sdk: a module's canned answer, messages.stream")
def _():
    with ant.messages.stream(model=CANNED_MODEL, max_tokens=64, messages=user("hi")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == CANNED_TEXT, f"streamed {text!r}"
    assert final.stop_reason == "end_turn", f"stop_reason {final.stop_reason!r}"


# 12: a wrong key is refused in each SDK's own way (and leaves no trace row).


@check("openai sdk: a wrong key raises openai.AuthenticationError")
def _():
    try:
        openai.OpenAI(base_url=URL + "/v1", api_key="sk-wrong", max_retries=0).chat.completions.create(
            model=GPT, messages=user("hi")
        )
    except openai.AuthenticationError:
        pass
    else:
        raise AssertionError("no error raised")


@check("anthropic sdk: a wrong key raises anthropic.AuthenticationError")
def _():
    try:
        anthropic.Anthropic(base_url=URL, api_key="sk-wrong", max_retries=0).messages.create(
            model=CLAUDE, max_tokens=16, messages=user("hi")
        )
    except anthropic.AuthenticationError as e:
        assert e.body["error"]["type"] == "authentication_error", f"error body {e.body!r}"
    else:
        raise AssertionError("no error raised")


if failures:
    print(f"{len(failures)} check(s) failed: {', '.join(failures)}", flush=True)
    sys.exit(1)
print("all checks passed", flush=True)
