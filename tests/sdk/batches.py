"""Files and batches through Stockyard with the official OpenAI SDK, unchanged but for base URL
and key: upload, list, retrieve, content and delete a file; create, retrieve, list and cancel a
batch, and fetch its output (the mock completes a batch on its first retrieve)."""

import json
import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ["STOCKYARD_URL"] + "/v1",
    api_key=os.environ["STOCKYARD_CLIENT_KEY"],
    max_retries=0,
)

lines = "".join(
    json.dumps(
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        }
    )
    + "\n"
    for i in range(2)
)

uploaded = client.files.create(file=("input.jsonl", lines.encode()), purpose="batch")
assert uploaded.id and uploaded.purpose == "batch", uploaded
assert any(f.id == uploaded.id for f in client.files.list().data)
assert client.files.retrieve(uploaded.id).filename == "input.jsonl"
assert client.files.content(uploaded.id).read().decode() == lines

batch = client.batches.create(
    input_file_id=uploaded.id,
    endpoint="/v1/chat/completions",
    completion_window="24h",
    metadata={"run": "sdk"},
)
done = client.batches.retrieve(batch.id)
assert done.status == "completed", done
assert any(b.id == batch.id for b in client.batches.list().data)
output = client.files.content(done.output_file_id).read().decode()
assert len(output.splitlines()) == 2, output
assert client.batches.cancel(batch.id).id == batch.id
assert client.files.delete(uploaded.id).deleted
print("files and batches: ok")
