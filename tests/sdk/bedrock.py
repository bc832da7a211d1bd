"""The official OpenAI SDK's image calls, and a rerank through its generic `post`, on Bedrock image
and rerank models through Stockyard, unchanged but for base URL and key.

Run by tests/sdk.rs (`official_sdk_makes_images_and_reranks_on_bedrock`), which configures a
`bedrock` provider pointing at the mock upstream (crates/mock-upstream/src/bedrock/media.rs: each
image the base64 of `mock-image-<i>`) and passes the proxy's address in STOCKYARD_URL. Each check
prints one line; the script exits 1 if any failed. The requests go out in a fixed order, and
tests/sdk.rs asserts on the trace rows in that order: keep BEDROCK_TRACES there in step.
"""

import base64
import os
import sys
import traceback

import openai

URL = os.environ["STOCKYARD_URL"].rstrip("/")
KEY = os.environ["STOCKYARD_CLIENT_KEY"]
NOVA = "bedrock/amazon.nova-canvas-v1:0"

oai = openai.OpenAI(base_url=URL + "/v1", api_key=KEY)

failures = []


def check(name):
    def run(fn):
        try:
            fn()
        except Exception:
            failures.append(name)
            print(f"FAIL {name}")
            traceback.print_exc()
        else:
            print(f"ok   {name}")
        return fn

    return run


@check("images.generate on Nova Canvas answers b64_json")
def _():
    made = oai.images.generate(
        model=NOVA, prompt="a red barn", n=2, size="1024x1024", quality="hd"
    )
    assert len(made.data) == 2, made
    assert base64.b64decode(made.data[1].b64_json) == b"mock-image-1", made
    assert made.size == "1024x1024" and made.quality == "premium", made


@check("a URL asked of Bedrock is a BadRequestError naming response_format")
def _():
    try:
        oai.images.generate(model=NOVA, prompt="x", response_format="url")
    except openai.BadRequestError as e:
        assert e.body["param"] == "response_format", e.body
    else:
        raise AssertionError("no error")


@check("images.edit on Nova Canvas is inpainting named by mask_prompt")
def _():
    edited = oai.images.edit(
        model=NOVA,
        image=("in.png", b"\x89PNG not really", "image/png"),
        prompt="a straw hat",
        extra_body={"mask_prompt": "the hat"},
    )
    assert base64.b64decode(edited.data[0].b64_json) == b"mock-image-0", edited


@check("rerank on Cohere Rerank 3.5 through Bedrock")
def _():
    answer = oai.post(
        "/rerank",
        body={
            "model": "bedrock/cohere.rerank-v3-5:0",
            "query": "red apples",
            "documents": ["bananas", "red apples are sweet"],
            "top_n": 1,
        },
        cast_to=object,
    )
    assert answer["results"][0]["index"] == 1, answer
    assert answer["meta"]["billed_units"]["search_units"] == 1, answer


if failures:
    sys.exit(f"{len(failures)} failed: {failures}")
