//! A socket's command rate (`socket.commands_per_sec`, `socket.command_burst`): a token bucket
//! that holds `burst` commands and refills at `per_sec`.

use std::time::Instant;

/// One socket's bucket. Not shared: the socket's task alone takes from it.
#[derive(Debug)]
pub(crate) struct CommandRate {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl CommandRate {
    /// A full bucket at `now`.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> CommandRate {
        CommandRate {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Takes one command at `now`; false when the socket is over its rate.
    pub fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.per_sec;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CommandRate;
    use std::time::{Duration, Instant};

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let start = Instant::now();
        let mut rate = CommandRate::new(10, 3, start);
        assert!((0..3).all(|_| rate.take(start)), "the burst passes");
        assert!(!rate.take(start), "the fourth at once is over the rate");
        // 10 per second: one more every 100 ms.
        assert!(!rate.take(start + Duration::from_millis(50)));
        assert!(rate.take(start + Duration::from_millis(110)));
        assert!(!rate.take(start + Duration::from_millis(120)));
        // A long pause refills the burst, not more.
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| rate.take(later)));
        assert!(!rate.take(later));
    }
}
