//! What the gateway stores for an answer, and the two shapes it answers in: a `chat.completion`
//! object, and a stream of `chat.completion.chunk` server-sent events.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// The snapshot schema of [`Completion`]: a snapshot written with another one (an older gateway's)
/// is not loaded (the gateway starts empty instead of misreading it).
pub const COMPLETION_SCHEMA: u32 = 2;

/// Milliseconds since the Unix epoch, the clock stored answers are dated by.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One cached answer: a single plain-text assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The model that answered, as the upstream named it.
    pub model: String,
    /// The assistant message's text.
    pub content: String,
    /// Why the upstream stopped (`stop`, `length`, ...).
    pub finish_reason: String,
    /// How long the upstream took to produce it; every hit credits this as time saved.
    pub upstream_ms: u64,
    /// The upstream's `usage` object (token counts) as JSON text, when it sent one; hits return
    /// it so that clients counting tokens keep working.
    pub usage: Option<String>,
    /// When it was stored, in milliseconds since the Unix epoch (a hit's `Age`).
    pub stored_at_ms: u64,
    /// When a per-request `ttl` ends it, in milliseconds since the Unix epoch: from then on it
    /// is treated as a miss and replaced.
    pub expires_at_ms: Option<u64>,
}

impl Completion {
    /// From an upstream `chat.completion` body. `None` unless it holds exactly one choice with a
    /// plain-text message: tool calls and multiple choices are passed on, never cached.
    pub fn from_response(body: &Value, upstream_ms: u64) -> Option<Self> {
        let [choice] = body.get("choices")?.as_array()?.as_slice() else {
            return None;
        };
        let message = choice.get("message")?;
        if has_value(message, "tool_calls") || has_value(message, "function_call") {
            return None;
        }
        Some(Completion {
            model: text_field(body, "model"),
            content: message.get("content")?.as_str()?.to_string(),
            finish_reason: text_field(choice, "finish_reason"),
            upstream_ms,
            usage: body
                .get("usage")
                .filter(|u| u.is_object())
                .map(Value::to_string),
            stored_at_ms: now_ms(),
            expires_at_ms: None,
        })
    }

    /// The same answer, ending `ttl_secs` after it was stored (`None`: only the cache's own
    /// time to live ends it).
    pub fn with_ttl(mut self, ttl_secs: Option<u64>) -> Self {
        self.expires_at_ms = ttl_secs.map(|s| self.stored_at_ms.saturating_add(s * 1000));
        self
    }

    /// Milliseconds since it was stored, at `now_ms`.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_at_ms)
    }

    /// Whether its per-request `ttl` has run out at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|end| now_ms >= end)
    }

    /// The stored `usage` object.
    pub fn usage(&self) -> Option<Value> {
        self.usage
            .as_deref()
            .and_then(|u| serde_json::from_str(u).ok())
    }

    /// The answer as a `chat.completion` object, with the stored `usage` when there is one.
    pub fn to_response(&self, id: &str, created: u64) -> Value {
        let mut v = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.content},
                "finish_reason": self.finish_reason,
            }],
        });
        if let Some(usage) = self.usage() {
            v["usage"] = usage;
        }
        v
    }

    /// The answer as the server-sent events a streaming upstream sends: the role, the content,
    /// the finish reason, then `[DONE]`. With `include_usage` (the request's
    /// `stream_options.include_usage`), every chunk carries `"usage": null` and a last chunk with
    /// no choices carries the stored usage, as OpenAI sends them.
    pub fn to_sse(&self, id: &str, created: u64, include_usage: bool) -> Vec<String> {
        let event = |choices: Value, usage: Option<Value>| {
            let mut event = json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "choices": choices,
            });
            if include_usage {
                event["usage"] = usage.unwrap_or(Value::Null);
            }
            format!("data: {event}\n\n")
        };
        let chunk = |delta: Value, finish: Value| {
            event(
                json!([{"index": 0, "delta": delta, "finish_reason": finish}]),
                None,
            )
        };
        let mut events = vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": self.content}), Value::Null),
            chunk(json!({}), json!(self.finish_reason)),
        ];
        if include_usage && let Some(usage) = self.usage() {
            events.push(event(json!([]), Some(usage)));
        }
        events.push("data: [DONE]\n\n".to_string());
        events
    }
}

fn has_value(v: &Value, field: &str) -> bool {
    v.get(field).is_some_and(|f| !f.is_null())
}

fn text_field(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Rebuilds a streamed answer from the upstream's event stream, as its bytes arrive in
/// arbitrary pieces.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    pending: Vec<u8>,
    model: String,
    content: String,
    finish_reason: Option<String>,
    usage: Option<String>,
    done: bool,
    /// Set by anything that a single plain-text completion cannot hold.
    uncacheable: bool,
}

impl StreamAssembler {
    /// Feed the next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            match std::str::from_utf8(&line) {
                Ok(line) => self.line(line.trim_end()),
                Err(_) => self.uncacheable = true,
            }
        }
    }

    fn line(&mut self, line: &str) {
        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
            return; // comments, event names, blank separators
        };
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            self.uncacheable = true;
            return;
        };
        if let Some(model) = event.get("model").and_then(Value::as_str) {
            self.model = model.to_string();
        }
        if let Some(usage) = event.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.to_string());
        }
        let choices = event.get("choices").and_then(Value::as_array);
        for choice in choices.into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                self.uncacheable = true;
            }
            let delta = choice.get("delta");
            if delta.is_some_and(|d| has_value(d, "tool_calls") || has_value(d, "function_call")) {
                self.uncacheable = true;
            }
            if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) {
                self.content.push_str(text);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_string());
            }
        }
    }

    /// Whether the stream has ended with `[DONE]` (cacheable or not).
    pub fn ended(&self) -> bool {
        self.done
    }

    /// The completed answer, or `None` if the stream did not end with `[DONE]` after a finish
    /// reason, or held something a plain-text completion cannot.
    pub fn finish(self, upstream_ms: u64) -> Option<Completion> {
        let finish_reason = self.finish_reason?;
        (self.done && !self.uncacheable).then_some(Completion {
            model: self.model,
            content: self.content,
            finish_reason,
            upstream_ms,
            usage: self.usage,
            stored_at_ms: now_ms(),
            expires_at_ms: None,
        })
    }
}

/// An uncacheable `chat.completion` (tool calls, several choices) as the server-sent events a
/// streaming upstream would have sent: per choice, one chunk holding the whole message as its
/// delta (each tool call with its `index`), then the usage chunk when `include_usage`, then
/// `[DONE]`. For a streaming caller that waited on a plain request's answer.
pub fn completion_to_sse(body: &Value, include_usage: bool) -> Option<String> {
    let choices = body.get("choices")?.as_array()?;
    let head = |choices: Value| {
        let mut e = json!({
            "id": body.get("id").cloned().unwrap_or(Value::Null),
            "object": "chat.completion.chunk",
            "created": body.get("created").cloned().unwrap_or(json!(0)),
            "model": body.get("model").cloned().unwrap_or(Value::Null),
            "choices": choices,
        });
        if include_usage {
            e["usage"] = Value::Null;
        }
        e
    };
    let mut out = String::new();
    for (i, choice) in choices.iter().enumerate() {
        let mut delta = choice.get("message")?.clone();
        if let Some(calls) = delta.get_mut("tool_calls").and_then(Value::as_array_mut) {
            for (n, call) in calls.iter_mut().enumerate() {
                call["index"] = json!(n);
            }
        }
        let index = choice.get("index").cloned().unwrap_or(json!(i));
        let finish = choice.get("finish_reason").cloned().unwrap_or(Value::Null);
        let event = head(json!([{"index": index, "delta": delta, "finish_reason": finish}]));
        out.push_str(&format!("data: {event}\n\n"));
    }
    if let (true, Some(usage)) = (include_usage, body.get("usage")) {
        let mut event = head(json!([]));
        event["usage"] = usage.clone();
        out.push_str(&format!("data: {event}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    Some(out)
}

/// A complete stream of `chat.completion.chunk` events put back together as the
/// `chat.completion` object a plain request gets: contents and tool-call arguments
/// concatenated per choice and per call index. For a plain caller that waited on a streaming
/// request's uncacheable answer. `None` unless the stream parses and ends with `[DONE]`.
pub fn sse_to_completion(events: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(events).ok()?;
    let mut head = json!({"object": "chat.completion"});
    let mut choices: Vec<Value> = Vec::new();
    let mut done = false;
    for data in text
        .lines()
        .filter_map(|l| l.strip_prefix("data:").map(str::trim))
    {
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let event: Value = serde_json::from_str(data).ok()?;
        for field in ["id", "created", "model", "system_fingerprint"] {
            if let Some(v) = event.get(field).filter(|v| !v.is_null()) {
                head[field] = v.clone();
            }
        }
        if let Some(usage) = event.get("usage").filter(|u| u.is_object()) {
            head["usage"] = usage.clone();
        }
        for choice in event
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = choice.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            while choices.len() <= i {
                let n = choices.len();
                choices.push(
                    json!({"index": n, "message": {"role": "assistant", "content": null},
                    "finish_reason": null}),
                );
            }
            let slot = &mut choices[i];
            if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
                slot["finish_reason"] = reason.clone();
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            let message = &mut slot["message"];
            if let Some(role) = delta.get("role").filter(|r| r.is_string()) {
                message["role"] = role.clone();
            }
            if let Some(piece) = delta.get("content").and_then(Value::as_str) {
                let joined = format!("{}{piece}", message["content"].as_str().unwrap_or(""));
                message["content"] = json!(joined);
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let n = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                let calls = message
                    .as_object_mut()?
                    .entry("tool_calls")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()?;
                while calls.len() <= n {
                    calls.push(json!({"id": null, "type": "function",
                        "function": {"name": "", "arguments": ""}}));
                }
                let slot = &mut calls[n];
                for field in ["id", "type"] {
                    if let Some(v) = call.get(field).filter(|v| !v.is_null()) {
                        slot[field] = v.clone();
                    }
                }
                for field in ["name", "arguments"] {
                    if let Some(piece) = call
                        .pointer(&format!("/function/{field}"))
                        .and_then(Value::as_str)
                    {
                        let joined =
                            format!("{}{piece}", slot["function"][field].as_str().unwrap_or(""));
                        slot["function"][field] = json!(joined);
                    }
                }
            }
        }
    }
    if !done {
        return None;
    }
    head["choices"] = Value::Array(choices);
    Some(head)
}
