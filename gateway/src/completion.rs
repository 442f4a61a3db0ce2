//! What the gateway stores for an answer, and the two shapes it answers in: a `chat.completion`
//! object, and a stream of `chat.completion.chunk` server-sent events.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
        })
    }

    /// The answer as a `chat.completion` object.
    pub fn to_response(&self, id: &str, created: u64) -> Value {
        json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.content},
                "finish_reason": self.finish_reason,
            }],
        })
    }

    /// The answer as the server-sent events a streaming upstream sends: the role, the content,
    /// the finish reason, then `[DONE]`.
    pub fn to_sse(&self, id: &str, created: u64) -> Vec<String> {
        let chunk = |delta: Value, finish: Value| {
            let event = json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            });
            format!("data: {event}\n\n")
        };
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": self.content}), Value::Null),
            chunk(json!({}), json!(self.finish_reason)),
            "data: [DONE]\n\n".to_string(),
        ]
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

    /// The completed answer, or `None` if the stream did not end with `[DONE]` after a finish
    /// reason, or held something a plain-text completion cannot.
    pub fn finish(self, upstream_ms: u64) -> Option<Completion> {
        let finish_reason = self.finish_reason?;
        (self.done && !self.uncacheable).then_some(Completion {
            model: self.model,
            content: self.content,
            finish_reason,
            upstream_ms,
        })
    }
}
