"""The gateway driven by the official `openai` Python SDK, as its users drive it.

Run by the Rust test `sdk::the_official_openai_sdk_works_through_the_gateway` (tests/it/sdk.rs)
against a gateway in front of the fake upstream (answers "answer <n>: <last message>"; a
message with RATELIMIT gets a 429 with retry-after: 7). Usage:

    python openai_client.py http://127.0.0.1:PORT/v1

Exits non-zero on the first failed check; prints one line per check.
"""

import sys
import time

import openai
from openai import OpenAI

BASE = sys.argv[1]


def client(key):
    # No retries: a 429 must come back to the caller as it is.
    return OpenAI(base_url=BASE, api_key=key, max_retries=0, timeout=30)


AAA = client("sk-AAA")
BBB = client("sk-BBB")
SYSTEM = {"role": "system", "content": "You are terse."}


def ask(c, text, **kw):
    """A plain chat completion: (parsed completion, response headers)."""
    raw = c.chat.completions.with_raw_response.create(
        model="m",
        temperature=0,
        messages=[SYSTEM, {"role": "user", "content": text}],
        **kw,
    )
    return raw.parse(), raw.headers


def stream(c, text, **kw):
    """A streamed chat completion: (text, usage or None, response headers)."""
    raw = c.chat.completions.with_raw_response.create(
        model="m",
        temperature=0,
        stream=True,
        messages=[SYSTEM, {"role": "user", "content": text}],
        **kw,
    )
    parts, usage = [], None
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if getattr(chunk, "usage", None) is not None:
            usage = chunk.usage
    return "".join(parts), usage, raw.headers


def text(completion):
    return completion.choices[0].message.content


def check(name, ok, detail=""):
    if not ok:
        print(f"FAILED {name}: {detail}", flush=True)
        sys.exit(1)
    print(f"ok {name}", flush=True)


print(f"openai {openai.__version__} against {BASE}", flush=True)

# Plain completion: a miss, then an exact hit with Age, the same cache key and the stored usage.
first, h1 = ask(AAA, "How do I reset my password?")
check("plain miss", h1["x-cache"] == "miss" and text(first).startswith("answer "), dict(h1))
check("miss carries the upstream's x-request-id", h1.get("x-request-id", "").startswith("req-"))
hit, h2 = ask(AAA, "How do I reset my password?")
check("plain hit", h2["x-cache"] == "exact" and text(hit) == text(first), dict(h2))
check("hit has Age", h2.get("age") == "0", dict(h2))
check("hit has the miss's x-cache-key", h2["x-cache-key"] == h1["x-cache-key"])
check(
    "hit has the stored usage",
    hit.usage is not None and hit.usage.total_tokens == first.usage.total_tokens,
    hit.usage,
)

# Streams: a miss streamed through, then a hit replayed with its usage chunk.
opts = {"stream_options": {"include_usage": True}}
s1, u1, sh1 = stream(AAA, "Summarize Hamlet", **opts)
check("stream miss", sh1["x-cache"] == "miss" and s1.startswith("answer "), s1)
s2, u2, sh2 = stream(AAA, "Summarize Hamlet", **opts)
check("stream hit", sh2["x-cache"] == "exact" and s2 == s1 and "age" in sh2, dict(sh2))
check("stream hit usage chunk", u2 is not None and u1 is not None and u2.total_tokens == u1.total_tokens)

# Tenant spoofing: another key naming the owner's tenant, or the owner's key, misses.
secret, _ = ask(AAA, "What is on our private roadmap?", extra_headers={"x-tenant-id": "acme"})
for spoof in ["acme", "Bearer sk-AAA"]:
    other = client(f"sk-BBB-{len(spoof)}")
    got, h = ask(other, "What is on our private roadmap?", extra_headers={"x-tenant-id": spoof})
    check(f"x-tenant-id {spoof!r} with another key misses", h["x-cache"] == "miss" and text(got) != text(secret), dict(h))

# Cache controls. Each no-cache form refreshes, and the next plain request gets the new answer.
q = "What is the status of order 7?"
old, _ = ask(AAA, q)
forms = [
    ("Cache-Control: no-cache", {"extra_headers": {"Cache-Control": "no-cache"}}),
    ("Cache-Control: max-age=0", {"extra_headers": {"Cache-Control": "max-age=0"}}),
    ("x-portkey-cache-force-refresh", {"extra_headers": {"x-portkey-cache-force-refresh": "true"}}),
    ('cache: {"no-cache": true}', {"extra_body": {"cache": {"no-cache": True}}}),
]
for name, kw in forms:
    new, h = ask(AAA, q, **kw)
    check(f"{name} refreshes", h["x-cache"] == "refresh" and text(new) != text(old), dict(h))
    after, h = ask(AAA, q)
    check(f"{name}: next plain request gets the new answer", h["x-cache"] == "exact" and text(after) == text(new))
    old = new

_, h = ask(AAA, q, extra_headers={"Cache-Control": "max-age=3600"})
check("Cache-Control: max-age=3600 serves a young answer", h["x-cache"] == "exact")
_, h = ask(AAA, q, extra_body={"cache": {"s-maxage": 3600}})
check("cache s-maxage serves a young answer", h["x-cache"] == "exact")

_, h = ask(AAA, "Keep nothing", extra_headers={"Cache-Control": "no-store"})
check("Cache-Control: no-store miss", h["x-cache"] == "miss")
_, h = ask(AAA, "Keep nothing", extra_body={"cache": {"no-store": True}})
check('cache: {"no-store": true} was not stored either', h["x-cache"] == "miss")
_, h = ask(AAA, "Keep nothing", extra_headers={"Cache-Control": "no-cache, no-store"})
check("no-cache with no-store bypasses", h["x-cache"] == "bypass" and h["x-cache-bypass"] == "no-cache, no-store")

# ttl and the maximum ages, across one pause of just over a second.
_, h = ask(AAA, "Short-lived", extra_body={"cache": {"ttl": 1}})
check('cache: {"ttl": 1} stores', h["x-cache"] == "miss")
_, h = ask(AAA, "Short-lived")
check("ttl: a hit while young", h["x-cache"] == "exact")
aged, _ = ask(AAA, "Aged")
time.sleep(1.1)
_, h = ask(AAA, "Short-lived")
check("ttl: a miss once ended, and replaced", h["x-cache"] == "miss")
_, h = ask(AAA, "Short-lived")
check("ttl: the replacement is served", h["x-cache"] == "exact")
_, h = ask(AAA, "Aged", extra_headers={"Cache-Control": "max-age=60"})
check("Cache-Control: max-age=60 serves a 1 s old answer with its Age", h["x-cache"] == "exact" and h["age"] == "1", dict(h))
new, h = ask(AAA, "Aged", extra_headers={"Cache-Control": "max-age=1"})
check("Cache-Control: max-age=1 refetches an older answer", h["x-cache"] == "miss" and text(new) != text(aged), dict(h))
again, h = ask(AAA, "Aged", extra_body={"cache": {"s-maxage": 1}})
check("cache s-maxage=1 serves the refetched answer", h["x-cache"] == "exact" and text(again) == text(new), dict(h))

_, h = ask(AAA, "Scoped", extra_body={"cache": {"namespace": "eu", "ttl": 600}})
check("namespace miss", h["x-cache"] == "miss")
_, h = ask(AAA, "Scoped", extra_body={"cache": {"namespace": "eu"}})
check("namespace hit", h["x-cache"] == "exact")
_, h = ask(AAA, "Scoped", extra_body={"cache": {"namespace": "us"}})
check("other namespace misses", h["x-cache"] == "miss")

try:
    ask(AAA, q, extra_body={"cache": {"nocache": True}})
    check("unknown cache field is a 400", False, "no error")
except openai.BadRequestError as e:
    body = e.body if isinstance(e.body, dict) else {}
    check("unknown cache field is a 400", e.status_code == 400 and body.get("param") == "cache", e.body)

# A 429 comes back with the upstream's retry-after and rate-limit headers.
try:
    ask(AAA, "RATELIMIT me")
    check("429 raised", False, "no error")
except openai.RateLimitError as e:
    check("429 raised", e.status_code == 429)
    check("429 retry-after passed through", e.response.headers.get("retry-after") == "7", dict(e.response.headers))
    check("429 x-ratelimit-* passed through", e.response.headers.get("x-ratelimit-remaining-requests") == "0")

# Other endpoints are proxied to the upstream.
models = AAA.models.list()
check("/v1/models proxied", [m.id for m in models.data] == ["fake-model"], models)

print("all checks passed", flush=True)
