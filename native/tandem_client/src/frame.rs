//! Phoenix V2 JSON frames: `[join_ref, ref, topic, event, payload]`.

use serde_json::{json, Value};

/// One Phoenix message.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub join_ref: Option<String>,
    pub ref_: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

impl Frame {
    /// The JSON text of the frame.
    pub fn encode(&self) -> String {
        json!([
            self.join_ref,
            self.ref_,
            self.topic,
            self.event,
            self.payload
        ])
        .to_string()
    }

    /// Parses a text frame; `None` when it is not a V2 frame.
    pub fn decode(text: &str) -> Option<Frame> {
        let Value::Array(parts) = serde_json::from_str(text).ok()? else {
            return None;
        };
        let [join_ref, ref_, topic, event, payload]: [Value; 5] = parts.try_into().ok()?;
        let text = |v: Value| match v {
            Value::String(s) => Some(s),
            _ => None,
        };
        Some(Frame {
            join_ref: text(join_ref),
            ref_: text(ref_),
            topic: text(topic)?,
            event: text(event)?,
            payload,
        })
    }

    /// For `phx_reply`: the status and the response.
    pub fn reply(&self) -> Option<(&str, &Value)> {
        if self.event != "phx_reply" {
            return None;
        }
        Some((
            self.payload.get("status")?.as_str()?,
            self.payload.get("response")?,
        ))
    }
}
