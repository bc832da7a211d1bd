//! The walk over canonical chat messages that every translator to a turn-based format (Anthropic,
//! Bedrock Converse, Gemini) needs: system and developer messages collected apart, user and
//! assistant messages as turns, each tool result folded into a user turn, and consecutive turns of
//! one role merged (those formats require alternating roles). A translator says, through a
//! [`MessageVisitor`], how one message becomes its own blocks, then maps the [`Walked`] turns to
//! its JSON shape.

use serde_json::Value;

use super::translate::{TranslateError, invalid};

/// The side of the conversation a turn belongs to. Tool results are the user's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    User,
    Assistant,
}

/// Consecutive messages of one side, as the target's blocks.
pub(crate) struct Turn {
    pub side: Side,
    pub blocks: Vec<Value>,
}

/// The messages walked: system blocks apart, then the turns in order.
pub(crate) struct Walked {
    pub system: Vec<Value>,
    pub turns: Vec<Turn>,
}

impl Walked {
    /// The turns as JSON objects `{"role": ..., <blocks_field>: [...]}`, the assistant's side
    /// named `assistant_role` (`assistant` for Bedrock, `model` for Gemini).
    pub(crate) fn turns_json(
        self,
        assistant_role: &str,
        blocks_field: &str,
    ) -> (Vec<Value>, Vec<Value>) {
        let turns = self
            .turns
            .into_iter()
            .map(|turn| {
                let role = match turn.side {
                    Side::User => "user",
                    Side::Assistant => assistant_role,
                };
                let mut object = serde_json::Map::new();
                object.insert("role".into(), Value::from(role));
                object.insert(blocks_field.into(), Value::Array(turn.blocks));
                Value::Object(object)
            })
            .collect();
        (self.system, turns)
    }
}

/// How one canonical message becomes the target's blocks. `path` is `messages[i]`, for errors
/// that name the field.
pub(crate) trait MessageVisitor {
    /// The message for a `role` that is missing or not a string (providers word it their way).
    const ROLE_MISSING: &'static str;
    fn system(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError>;
    fn user(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError>;
    fn assistant(&mut self, message: &Value, path: &str) -> Result<Vec<Value>, TranslateError>;
    /// The block for `messages[i]`, a tool result; all messages are given because some targets
    /// look back for the call it answers.
    fn tool(&mut self, messages: &[Value], i: usize, path: &str) -> Result<Value, TranslateError>;
    /// Any other role: `Ok` skips the message, `Err` refuses the request.
    fn other_role(&mut self, role: &str, path: &str) -> Result<(), TranslateError>;
}

/// Walks `messages` in order; turns with no blocks are left out.
pub(crate) fn walk<V: MessageVisitor>(
    messages: &[Value],
    visitor: &mut V,
) -> Result<Walked, TranslateError> {
    let mut walked = Walked {
        system: Vec::new(),
        turns: Vec::new(),
    };
    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{path}.role"), V::ROLE_MISSING))?;
        let (side, blocks) = match role {
            "system" | "developer" => {
                walked.system.extend(visitor.system(message, &path)?);
                continue;
            }
            "user" => (Side::User, visitor.user(message, &path)?),
            "assistant" => (Side::Assistant, visitor.assistant(message, &path)?),
            "tool" => (Side::User, vec![visitor.tool(messages, i, &path)?]),
            other => {
                visitor.other_role(other, &path)?;
                continue;
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match walked.turns.last_mut() {
            Some(last) if last.side == side => last.blocks.extend(blocks),
            _ => walked.turns.push(Turn { side, blocks }),
        }
    }
    Ok(walked)
}
