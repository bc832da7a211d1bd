//! The stream half of a guardrail: the look-behind tail, scanned whole on each event, and the
//! decision that releases everything that can no longer be part of a match.

use std::collections::VecDeque;
use std::marker::PhantomData;

use super::{Action, Family, Finding, Guard, Placeholders, Scanner};
use crate::modules::{StreamDecision, StreamEvent};
use crate::request::RequestCtx;

/// One guardrail's look at one stream (a context slot, one type per family).
struct Tail<F> {
    /// The text of the events this guardrail still holds, oldest first.
    text: String,
    /// The text length of each held event, oldest first (0 for an event with no text).
    lens: VecDeque<usize>,
    /// Answer text seen so far, in bytes, for the output-token limit.
    seen_bytes: usize,
    /// Whether this stream is in scope (decided on its first event).
    active: bool,
    _family: PhantomData<fn() -> F>,
}

impl<F> Clone for Tail<F> {
    fn clone(&self) -> Self {
        Tail {
            text: self.text.clone(),
            lens: self.lens.clone(),
            seen_bytes: self.seen_bytes,
            active: self.active,
            _family: PhantomData,
        }
    }
}

/// Tokens in `bytes` of answer text, estimated at four bytes a token (a stream carries no usage
/// until its end, and a limit must act before).
pub fn estimated_tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

pub(super) fn on_event<F: Family>(
    guard: &Guard<F>,
    ctx: &mut RequestCtx,
    event: &mut StreamEvent,
) -> StreamDecision {
    let mut tail = match ctx.slots.remove::<Tail<F>>() {
        Some(tail) => tail,
        None => Tail {
            text: String::new(),
            lens: VecDeque::new(),
            seen_bytes: 0,
            active: guard.applies(ctx),
            _family: PhantomData,
        },
    };
    let decision = decide(guard, ctx, event, &mut tail);
    ctx.slots.insert(tail);
    decision
}

fn decide<F: Family>(
    guard: &Guard<F>,
    ctx: &mut RequestCtx,
    event: &mut StreamEvent,
    tail: &mut Tail<F>,
) -> StreamDecision {
    if !tail.active {
        return StreamDecision::Pass;
    }
    let text_len = event.text().len();
    if text_len == 0 {
        if !tail.lens.is_empty() {
            tail.lens.push_back(0);
        }
        return StreamDecision::Pass;
    }
    let config = &guard.config;
    let offset = tail.seen_bytes;
    tail.seen_bytes += text_len;
    if let Some(limit) = guard.scanner.max_output_tokens()
        && estimated_tokens(tail.seen_bytes) > limit
    {
        let finding = Finding::new("max_output_tokens", "LIMIT", 0, 0);
        guard.record(ctx, &finding, format!("output@{offset}"));
        return StreamDecision::End(guard.refusal(&finding));
    }
    if config.output {
        tail.text.push_str(event.text());
        let new_from = tail.text.len() - text_len;
        let mut found = Vec::new();
        guard.scanner.scan(&tail.text, &mut found);
        // A match wholly inside text already seen was dealt with then.
        found.retain(|f| f.end > new_from);
        if let Some(first) = found.first().cloned() {
            // Placeholders may make the held text longer than what the provider sent.
            let held_from = offset.saturating_sub(new_from);
            for finding in &found {
                let position = format!("output@{}", held_from + finding.start);
                guard.record(ctx, finding, position);
            }
            match config.action {
                Action::Block => return StreamDecision::End(guard.refusal(&first)),
                Action::Flag => {}
                Action::Redact => {
                    // A match that began in an event still held is rewritten whole in this one,
                    // and the held events it reached into are merged away (never sent).
                    let reach = found.iter().map(|f| f.start).min().unwrap_or(new_from);
                    let Some((from, merged)) = merge_start(&tail.lens, new_from, reach) else {
                        // Something other than text sits between: end rather than leak a half.
                        return StreamDecision::End(guard.refusal(&first));
                    };
                    let mut local: Vec<Finding> = found
                        .into_iter()
                        .map(|mut f| {
                            f.start -= from;
                            f.end -= from;
                            f
                        })
                        .collect();
                    let mut map = ctx.slots.remove::<Placeholders>().unwrap_or_default();
                    let redacted = map.redact(&tail.text[from..], &mut local);
                    ctx.slots.insert(map);
                    event.rewrite_text(&redacted);
                    tail.text.truncate(from);
                    tail.text.push_str(&redacted);
                    tail.lens.truncate(tail.lens.len() - merged);
                    tail.lens.push_back(tail.text.len() - from);
                    restore(guard, ctx, event);
                    return release(guard, ctx, tail, merged);
                }
            }
        }
        if let Some(decision) = restore_across(guard, ctx, event, tail, new_from) {
            return decision;
        }
        tail.lens.push_back(tail.text.len() - new_from);
    }
    restore(guard, ctx, event);
    if !config.output {
        return StreamDecision::Pass;
    }
    release(guard, ctx, tail, 0)
}

/// A placeholder begun in a held chunk and completed in this one: this event gets the text of
/// both with the original put back, and the held chunks are merged away. `None` when there is
/// none (or something other than text sits between, and the placeholder goes out as it is).
fn restore_across<F: Family>(
    guard: &Guard<F>,
    ctx: &RequestCtx,
    event: &mut StreamEvent,
    tail: &mut Tail<F>,
    new_from: usize,
) -> Option<StreamDecision> {
    if !guard.config.restore {
        return None;
    }
    let map = ctx.slots.get::<Placeholders>()?;
    let start = map.spanning(&tail.text, new_from)?;
    let (from, merged) = merge_start(&tail.lens, new_from, start)?;
    let text = &tail.text[from..];
    let restored = map.restore(text).unwrap_or_else(|| text.to_string());
    event.rewrite_text(&restored);
    tail.lens.truncate(tail.lens.len() - merged);
    tail.lens.push_back(tail.text.len() - from);
    Some(release(guard, ctx, tail, merged))
}

/// Puts back the values the request's redaction replaced, when configured.
fn restore<F: Family>(guard: &Guard<F>, ctx: &RequestCtx, event: &mut StreamEvent) {
    if guard.config.restore
        && let Some(map) = ctx.slots.get::<Placeholders>()
        && let Some(restored) = map.restore(event.text())
    {
        event.rewrite_text(&restored);
    }
}

/// Where a rewrite reaching back to byte `reach` of the held text begins, and how many held
/// events (before the current one, which starts at `new_from`) it takes in; `None` when one of
/// them carries no text (an event of another kind, which cannot be merged away).
fn merge_start(lens: &VecDeque<usize>, new_from: usize, reach: usize) -> Option<(usize, usize)> {
    let mut from = new_from;
    let mut merged = 0;
    for &len in lens.iter().rev() {
        if from <= reach {
            break;
        }
        if len == 0 {
            return None;
        }
        from -= len;
        merged += 1;
    }
    (from <= reach).then_some((from, merged))
}

/// Releases every held event that can no longer be part of a match, after `merged` held events
/// were folded into the current one.
fn release<F: Family>(
    guard: &Guard<F>,
    ctx: &RequestCtx,
    tail: &mut Tail<F>,
    merged: usize,
) -> StreamDecision {
    // A placeholder still being written is held too, so that it can be restored whole.
    let placeholder = match ctx.slots.get::<Placeholders>() {
        Some(map) if guard.config.restore => map.partial_at_end(&tail.text),
        _ => 0,
    };
    let keep = guard
        .scanner
        .pending_tail(&tail.text)
        .min(guard.scanner.max_lookbehind())
        .max(placeholder);
    let mut held_len = tail.text.len();
    while let Some(&front) = tail.lens.front() {
        if held_len - front < keep {
            break;
        }
        tail.lens.pop_front();
        tail.text.drain(..front);
        held_len -= front;
    }
    match merged {
        0 => StreamDecision::ReleaseBut(tail.lens.len()),
        merged => StreamDecision::Merged {
            merged,
            keep: tail.lens.len(),
        },
    }
}
