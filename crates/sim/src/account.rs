//! Packet accounting. Packets of each direction leave at `start + k/rate`;
//! between two events the fate of every packet is the same, so an interval
//! is counted with integer arithmetic (exact counts, no per-packet work).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::traffic::{DropReason, Fate, Path};

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    pub delivered: u64,
    pub hn: u64,
    pub vf: u64,
    pub lost: BTreeMap<DropReason, u64>,
}

impl Counters {
    pub fn lost_total(&self) -> u64 {
        self.lost.values().sum()
    }

    fn add(&mut self, fate: Fate, n: u64) {
        if n == 0 {
            return;
        }
        self.sent += n;
        match fate {
            Fate::Delivered(p) => {
                self.delivered += n;
                match p {
                    Path::Hn => self.hn += n,
                    Path::Vf => self.vf += n,
                }
            }
            Fate::Dropped(r) => *self.lost.entry(r).or_default() += n,
        }
    }
}

/// One plot bucket: packets (both directions) per path, and lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    pub hn: u64,
    pub vf: u64,
    pub lost: u64,
}

/// Accounting state.
#[derive(Debug, Clone)]
pub struct Accounting {
    pub rate: u64,
    pub timeout: Duration,
    pub start: Option<Duration>,
    pub addr: Option<IpAddr>,
    pub last: Duration,
    pub fate_in: Fate,
    pub fate_out: Fate,
    pub counters: Counters,
    /// A connection is established.
    pub open: bool,
    /// Time of the last packet that got through in both directions.
    pub last_ok: Duration,
    pub broken: Vec<(Duration, String)>,
    pub bucket: Option<Duration>,
    pub series: Vec<Bucket>,
}

impl Accounting {
    pub fn new(
        rate: u64,
        timeout: Duration,
        addr: Option<IpAddr>,
        start: Option<Duration>,
    ) -> Self {
        Accounting {
            rate,
            timeout,
            start,
            addr,
            last: Duration::ZERO,
            fate_in: Fate::Dropped(DropReason::NoAddress),
            fate_out: Fate::Dropped(DropReason::NoAddress),
            counters: Counters::default(),
            open: false,
            last_ok: Duration::ZERO,
            broken: Vec::new(),
            bucket: None,
            series: Vec::new(),
        }
    }

    /// Index of the first packet sent at or after `t`.
    fn first_k(&self, t: Duration) -> u64 {
        let Some(s) = self.start else { return 0 };
        if t <= s {
            return 0;
        }
        let ns = (t - s).as_nanos();
        let k = (ns * u128::from(self.rate)).div_ceil(1_000_000_000);
        u64::try_from(k).unwrap_or(u64::MAX)
    }

    fn time_of(&self, k: u64) -> Duration {
        let s = self.start.unwrap_or_default();
        let ns = u128::from(k) * 1_000_000_000 / u128::from(self.rate.max(1));
        s + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Packets of one direction sent in `[a, b)`.
    pub fn count(&self, a: Duration, b: Duration) -> u64 {
        if self.rate == 0 || b <= a {
            return 0;
        }
        self.first_k(b) - self.first_k(a)
    }

    /// Count `[last, to)` with the current fates.
    pub fn advance(&mut self, to: Duration) {
        let a = self.last;
        self.last = to.max(a);
        let (Some(start), Some(_)) = (self.start, self.addr) else {
            return;
        };
        let a = a.max(start);
        if to <= a || self.rate == 0 {
            return;
        }
        let n = self.count(a, to);
        self.counters.add(self.fate_in, n);
        self.counters.add(self.fate_out, n);
        if let Some(w) = self.bucket {
            self.add_series(a, to, w);
        }
        let ok = self.fate_in.is_delivered() && self.fate_out.is_delivered();
        if ok && n > 0 {
            self.open = true;
            self.last_ok = self.time_of(self.first_k(to) - 1);
        } else if !ok && self.open {
            let deadline = self.last_ok + self.timeout;
            if deadline < to {
                self.open = false;
                self.broken.push((deadline, "no packet got through".into()));
            }
        }
    }

    fn add_series(&mut self, a: Duration, b: Duration, w: Duration) {
        let wn = w.as_nanos().max(1);
        let mut t = a;
        while t < b {
            let idx = usize::try_from(t.as_nanos() / wn).unwrap_or(usize::MAX);
            let end =
                Duration::from_nanos(u64::try_from((idx as u128 + 1) * wn).unwrap_or(u64::MAX))
                    .min(b);
            let n = self.count(t, end);
            if self.series.len() <= idx {
                self.series.resize(idx + 1, Bucket::default());
            }
            let bk = &mut self.series[idx];
            for f in [self.fate_in, self.fate_out] {
                match f {
                    Fate::Delivered(Path::Hn) => bk.hn += n,
                    Fate::Delivered(Path::Vf) => bk.vf += n,
                    Fate::Dropped(_) => bk.lost += n,
                }
            }
            t = end;
        }
    }

    /// The connection's address left the VM.
    pub fn address_left(&mut self, now: Duration) {
        if self.open {
            self.open = false;
            self.broken.push((now, "address left the VM".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact() {
        let mut a = Accounting::new(
            100,
            Duration::from_secs(3),
            None,
            Some(Duration::from_secs(1)),
        );
        assert_eq!(a.count(Duration::ZERO, Duration::from_secs(1)), 0);
        assert_eq!(a.count(Duration::from_secs(1), Duration::from_secs(2)), 100);
        // Splitting an interval never changes the total.
        let parts = [1000u64, 1003, 1250, 1251, 1999, 2000];
        let mut sum = 0;
        for w in parts.windows(2) {
            sum += a.count(Duration::from_millis(w[0]), Duration::from_millis(w[1]));
        }
        assert_eq!(sum, 100);
        a.rate = 3;
        assert_eq!(a.count(Duration::from_secs(1), Duration::from_secs(4)), 9);
    }

    #[test]
    fn connection_breaks_after_timeout() {
        let ip: IpAddr = "10.0.0.4".parse().unwrap();
        let mut a = Accounting::new(10, Duration::from_secs(3), Some(ip), Some(Duration::ZERO));
        a.fate_in = Fate::Delivered(Path::Hn);
        a.fate_out = Fate::Delivered(Path::Hn);
        a.advance(Duration::from_secs(10));
        assert!(a.open);
        a.fate_in = Fate::Dropped(DropReason::NoActivePort);
        a.advance(Duration::from_secs(12));
        assert!(a.open, "2 s gap < 3 s timeout");
        a.advance(Duration::from_secs(14));
        assert!(!a.open);
        assert_eq!(a.broken.len(), 1);
        assert_eq!(a.broken[0].0, Duration::from_millis(12900));
        assert_eq!(a.counters.sent, 280);
        assert_eq!(a.counters.lost_total(), 40);
    }
}
