//! The stream hook: runs the chain's stream watchers on each event and keeps what they hold.
//!
//! Each watcher may pass, rewrite, hold, release or end. While any watcher holds, events queue
//! here instead of going out; when the last one releases, the queue goes out in order. The queue
//! never exceeds the smallest window among the watchers holding: beyond it the oldest event goes
//! out, so a stream never stalls on a module. Built only when the chain has watchers, so a stream
//! with none pays nothing.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::modules::{Module, StreamDecision, StreamEvent, StreamWindow};
use crate::request::{ApiError, RequestCtx};

pub struct StreamHooks {
    watchers: Vec<(Arc<dyn Module>, StreamWindow)>,
    holding: Vec<bool>,
    held: VecDeque<StreamEvent>,
    held_bytes: usize,
}

impl StreamHooks {
    /// `None` when no module watches streams.
    pub fn new(watchers: &[(Arc<dyn Module>, StreamWindow)]) -> Option<StreamHooks> {
        if watchers.is_empty() {
            return None;
        }
        Some(StreamHooks {
            watchers: watchers.to_vec(),
            holding: vec![false; watchers.len()],
            held: VecDeque::new(),
            held_bytes: 0,
        })
    }

    /// Runs the watchers on `event`; returns the events to send now, in order, or the error that
    /// ends the stream (what was held is dropped with it).
    pub fn run(
        &mut self,
        ctx: &mut RequestCtx,
        mut event: StreamEvent,
    ) -> Result<Vec<StreamEvent>, ApiError> {
        for (i, (module, _)) in self.watchers.iter().enumerate() {
            match module.on_event(ctx, &mut event) {
                StreamDecision::Pass => {}
                StreamDecision::Hold => self.holding[i] = true,
                StreamDecision::Release => self.holding[i] = false,
                StreamDecision::End(err) => {
                    self.held.clear();
                    self.held_bytes = 0;
                    return Err(err);
                }
            }
        }
        let Some(window) = self.window() else {
            let mut out: Vec<StreamEvent> = self.held.drain(..).collect();
            self.held_bytes = 0;
            out.push(event);
            return Ok(out);
        };
        self.held_bytes += event.raw().len();
        self.held.push_back(event);
        let mut out = Vec::new();
        while self.held.len() > window.max_events || self.held_bytes > window.max_bytes {
            let Some(oldest) = self.held.pop_front() else {
                break;
            };
            self.held_bytes -= oldest.raw().len();
            out.push(oldest);
        }
        Ok(out)
    }

    /// Everything held, for a stream that ended cleanly.
    pub fn release_all(&mut self) -> Vec<StreamEvent> {
        self.holding.fill(false);
        self.held_bytes = 0;
        self.held.drain(..).collect()
    }

    /// The smallest window among the watchers holding, if any holds.
    fn window(&self) -> Option<StreamWindow> {
        self.watchers
            .iter()
            .zip(&self.holding)
            .filter(|(_, holding)| **holding)
            .map(|((_, window), _)| *window)
            .reduce(|a, b| StreamWindow {
                max_events: a.max_events.min(b.max_events),
                max_bytes: a.max_bytes.min(b.max_bytes),
            })
    }
}
