//! Recent events (transitions, reloads, health changes) with timestamps, for status and REPL.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

const KEEP: usize = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub at: f64,
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct EventLog {
    events: VecDeque<Event>,
}

pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl EventLog {
    /// Record and log an event.
    pub fn push(&mut self, kind: &'static str, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(event = kind, "{message}");
        if self.events.len() == KEEP {
            self.events.pop_front();
        }
        self.events.push_back(Event { at: now_secs(), kind, message });
    }

    /// The last `limit` events, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let skip = self.events.len().saturating_sub(limit);
        self.events.iter().skip(skip).cloned().collect()
    }

    pub fn count(&self, kind: &str) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }
}
