"""The official OpenAI SDK's images, audio and moderations calls, and Google's `google-genai` SDK
(Gemini's own format), unchanged but for base URL and key, against Stockyard.

Run by tests/sdk.rs (`official_sdks_cover_images_audio_moderations_and_geminis_format`), which
starts the proxy with `openai` pointing at the mock upstream (crates/mock-upstream) and passes the
proxy's address in STOCKYARD_URL. Every answer is the mock's deterministic one (see
crates/mock-upstream/src/openai/operations.rs). Each check prints one line; the script exits 1 if
any failed. The requests go out in a fixed order, and tests/sdk.rs asserts on the trace rows in
that order: keep OPERATION_TRACES there in step with this file.
"""

import base64
import io
import os
import struct
import sys
import traceback

import openai
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

URL = os.environ["STOCKYARD_URL"].rstrip("/")
KEY = os.environ["STOCKYARD_CLIENT_KEY"]
TEXT = "Hello from the mock upstream."
GPT = "gpt-4o-mini"

oai = openai.OpenAI(base_url=URL + "/v1", api_key=KEY)
gem = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=URL))

failures = []


def check(name):
    def run(fn):
        try:
            fn()
        except AssertionError as e:
            failures.append(name)
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:
            failures.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
        else:
            print(f"ok   {name}", flush=True)
        return fn

    return run


def wav(seconds):
    """A silent WAV file: 16 kHz, 16-bit mono (32,000 bytes a second)."""
    data = b"\0" * (32000 * seconds)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    return header + b"data" + struct.pack("<I", len(data)) + data


print(f"openai {openai.__version__}, google-genai {genai.__version__}, proxy {URL}", flush=True)


@check("openai sdk: images.generate")
def _():
    r = oai.images.generate(model="dall-e-3", prompt="a red barn", n=1, size="1024x1024", quality="hd")
    assert len(r.data) == 1, f"data {r.data!r}"
    assert base64.b64decode(r.data[0].b64_json) == b"mock-image-0", f"image {r.data[0]!r}"


@check("openai sdk: images.edit (multipart)")
def _():
    image = io.BytesIO(b"\x89PNG fake image")
    image.name = "cat.png"
    r = oai.images.edit(model="dall-e-2", image=image, prompt="add a hat", n=2, size="512x512")
    assert len(r.data) == 2, f"data {r.data!r}"


@check("openai sdk: audio.speech, streamed")
def _():
    text = "Hello from the gateway"
    with oai.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input=text) as r:
        assert r.headers["content-type"] == "audio/mpeg", f"content type {r.headers['content-type']!r}"
        audio = b"".join(r.iter_bytes())
    assert audio == b"ID3" + (text * 3).encode(), f"audio {audio[:40]!r}"


@check("openai sdk: audio.transcriptions.create (multipart)")
def _():
    r = oai.audio.transcriptions.create(model="whisper-1", file=("talk.wav", wav(2), "audio/wav"))
    assert r.text.startswith("heard talk.wav ("), f"text {r.text!r}"


@check("openai sdk: audio.translations.create, text format")
def _():
    r = oai.audio.translations.create(
        model="whisper-1", file=("talk.wav", wav(1), "audio/wav"), response_format="text"
    )
    assert str(r).startswith("heard talk.wav ("), f"text {r!r}"


@check("openai sdk: moderations.create")
def _():
    r = oai.moderations.create(model="omni-moderation-latest", input=["fine", "FLAG this"])
    assert [x.flagged for x in r.results] == [False, True], f"results {r.results!r}"
    assert r.results[1].categories.violence is True, f"categories {r.results[1].categories!r}"


@check("google-genai sdk: generate_content on an OpenAI model")
def _():
    r = gem.models.generate_content(
        model=GPT,
        contents="Say hello",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=64),
    )
    assert r.text == TEXT, f"text {r.text!r}"
    assert r.usage_metadata.prompt_token_count > 0, f"usage {r.usage_metadata!r}"
    assert r.candidates[0].finish_reason == types.FinishReason.STOP, f"finish {r.candidates[0].finish_reason!r}"


@check("google-genai sdk: generate_content_stream on an OpenAI model")
def _():
    chunks = list(gem.models.generate_content_stream(model=GPT, contents="Say hello"))
    text = "".join(c.text or "" for c in chunks)
    assert text == TEXT, f"streamed {text!r}"
    assert chunks[-1].usage_metadata.total_token_count > 0, f"usage {chunks[-1].usage_metadata!r}"


@check("google-genai sdk: a bad request raises ClientError with Google's status")
def _():
    try:
        gem.models.generate_content(
            model=GPT, contents="hi", config=types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
        )
    except genai_errors.ClientError as e:
        assert e.code == 400, f"code {e.code!r}"
        assert e.status == "INVALID_ARGUMENT", f"status {e.status!r}"
    else:
        raise AssertionError("no error raised")


if failures:
    print(f"{len(failures)} check(s) failed: {', '.join(failures)}", flush=True)
    sys.exit(1)
print("all checks passed", flush=True)
