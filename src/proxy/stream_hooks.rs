//! The stream hook: runs the chain's stream watchers on each event and keeps what they hold.
//!
//! Watchers that may hold (a window above zero) see each event as it arrives and may pass,
//! rewrite, hold, release or end. While any of them holds, events queue here instead of going out;
//! when the last one releases, the queue goes out in order. A holder may release all but its last
//! few events (`ReleaseBut`), keeping a look-behind window, and may fold the text of the events it
//! holds into the current one when a rewrite spans them (`Merged`): events older than every holder's
//! oldest held one go out at once. A holder that lets the queue grow past
//! its window ends the stream: releasing what it held back would leak exactly what it was holding
//! (a secret, a marker), so the window fails closed. Watch-only modules (a window of zero, such as
//! body capture) see events only as they go out, so they never record what a holder withheld.
//! Built only when the chain has watchers, so a stream with none pays nothing.

use std::collections::VecDeque;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::modules::{Module, StreamDecision, StreamEvent, StreamWindow};
use crate::request::{ApiError, RequestCtx};

/// The events to send now, in order: almost always the one that just came, which stays inline
/// (a stream of a thousand chunks made a thousand one-event vectors before).
pub type Ready = SmallVec<[StreamEvent; 1]>;

pub struct StreamHooks {
    holders: Vec<(Arc<dyn Module>, StreamWindow)>,
    observers: Vec<Arc<dyn Module>>,
    /// Per holder: the sequence number of the oldest event it holds, if it holds any.
    hold_from: Vec<Option<u64>>,
    /// Held events with their sequence numbers, oldest first.
    held: VecDeque<(u64, StreamEvent)>,
    held_bytes: usize,
    /// The sequence number the next event gets.
    next_seq: u64,
}

/// A stream a watcher ended, and which.
pub struct Ended {
    pub error: ApiError,
    pub by: &'static str,
}

impl StreamHooks {
    /// `None` when no module watches streams.
    pub fn new(watchers: &[(Arc<dyn Module>, StreamWindow)]) -> Option<StreamHooks> {
        if watchers.is_empty() {
            return None;
        }
        let holders: Vec<(Arc<dyn Module>, StreamWindow)> = watchers
            .iter()
            .filter(|(_, window)| *window != StreamWindow::WATCH)
            .cloned()
            .collect();
        let observers = watchers
            .iter()
            .filter(|(_, window)| *window == StreamWindow::WATCH)
            .map(|(module, _)| module.clone())
            .collect();
        Some(StreamHooks {
            hold_from: vec![None; holders.len()],
            holders,
            observers,
            held: VecDeque::new(),
            held_bytes: 0,
            next_seq: 0,
        })
    }

    /// Runs the watchers on `event`; returns the events to send now, in order, or the watcher
    /// that ended the stream (what was held is dropped with it).
    pub fn run(&mut self, ctx: &mut RequestCtx, mut event: StreamEvent) -> Result<Ready, Ended> {
        if self.holders.is_empty() {
            // Nothing can hold: the event goes out as it came, past the watch-only modules.
            let mut out = Ready::new();
            out.push(event);
            return self.observe(ctx, out);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        for (i, (module, _)) in self.holders.iter().enumerate() {
            match module.on_event(ctx, &mut event) {
                StreamDecision::Pass => {}
                StreamDecision::Hold => {
                    self.hold_from[i].get_or_insert(seq);
                }
                StreamDecision::Release | StreamDecision::ReleaseBut(0) => self.hold_from[i] = None,
                StreamDecision::ReleaseBut(keep) => {
                    // The last `keep` events, this one included, stay held.
                    self.hold_from[i] = Some((seq + 1).saturating_sub(keep as u64));
                }
                StreamDecision::Merged { merged, keep } => {
                    // The module holds the events it merged, so they are the newest held ones.
                    for _ in 0..merged.min(self.held.len()) {
                        if let Some((_, dropped)) = self.held.pop_back() {
                            self.held_bytes -= dropped.raw().len();
                        }
                    }
                    self.hold_from[i] = match keep {
                        0 => None,
                        keep => Some((seq + 1).saturating_sub(keep as u64)),
                    };
                }
                StreamDecision::End(error) => {
                    return Err(self.end(error, module.name()));
                }
            }
        }
        self.held_bytes += event.raw().len();
        self.held.push_back((seq, event));
        let oldest_held = self.hold_from.iter().flatten().min().copied();
        let mut out = Ready::new();
        while let Some((front, _)) = self.held.front() {
            if oldest_held.is_some_and(|oldest| *front >= oldest) {
                break;
            }
            if let Some((_, event)) = self.held.pop_front() {
                self.held_bytes -= event.raw().len();
                out.push(event);
            }
        }
        if let Some((window, tightest)) = self.window()
            && (self.held.len() > window.max_events || self.held_bytes > window.max_bytes)
        {
            let error = ApiError::Internal {
                message: format!(
                    "module {tightest} held more of the stream than its window of {} events and {} bytes",
                    window.max_events, window.max_bytes
                ),
            };
            return Err(self.end(error, tightest));
        }
        if out.is_empty() {
            return Ok(out);
        }
        self.observe(ctx, out)
    }

    /// Lets the watch-only modules see what goes out.
    fn observe(&mut self, ctx: &mut RequestCtx, mut out: Ready) -> Result<Ready, Ended> {
        for module in &self.observers {
            for event in &mut out {
                if let StreamDecision::End(error) = module.on_event(ctx, event) {
                    return Err(Ended {
                        error,
                        by: module.name(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn end(&mut self, error: ApiError, by: &'static str) -> Ended {
        self.held.clear();
        self.held_bytes = 0;
        Ended { error, by }
    }

    /// Everything held, for a stream that ended cleanly (watch-only modules see it go out).
    pub fn release_all(&mut self, ctx: &mut RequestCtx) -> Result<Ready, Ended> {
        self.hold_from.fill(None);
        self.held_bytes = 0;
        let out = self.held.drain(..).map(|(_, event)| event).collect();
        self.observe(ctx, out)
    }

    /// The smallest window among the holders holding, with the name of the tightest.
    fn window(&self) -> Option<(StreamWindow, &'static str)> {
        self.holders
            .iter()
            .zip(&self.hold_from)
            .filter(|(_, from)| from.is_some())
            .map(|((module, window), _)| (*window, module.name()))
            .reduce(|a, b| {
                let tightest = if b.0.max_bytes < a.0.max_bytes {
                    b.1
                } else {
                    a.1
                };
                let window = StreamWindow {
                    max_events: a.0.max_events.min(b.0.max_events),
                    max_bytes: a.0.max_bytes.min(b.0.max_bytes),
                };
                (window, tightest)
            })
    }
}
