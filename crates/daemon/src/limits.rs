//! The ranges of the numbers a user gives hvnet as durations or factors, in hvnet.conf or on
//! the command line, checked in one place before any of them becomes a `Duration` or a
//! multiplier: a value out of range (NaN, infinity, 1e300, a negative number) is an error that
//! names the setting and the range, never a panic in `Duration::from_secs_f64` or in the
//! arithmetic that follows.

use std::time::Duration;

/// The longest duration any setting accepts: one day. Long enough for every timer hvnet has,
/// short enough that a clock plus it can never overflow.
pub const MAX_SECONDS: f64 = 86_400.0;

/// The largest simulator speed (virtual seconds per wall-clock second).
pub const MAX_SPEED: f64 = 1_000_000.0;

/// What a number means, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Factor,
}

/// An allowed range: `min` (inclusive, or exclusive when `above`) to `max` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    min: f64,
    above: bool,
    max: f64,
    unit: Unit,
}

/// `vf_delay`: rc.conf's floor of 2 seconds.
pub const VF_DELAY: Range = Range::seconds_from(2.0);
/// `resync`, `action_timeout`, `--action-timeout`.
pub const POSITIVE_SECONDS: Range = Range::seconds_above(0.0);
/// `hold_down.window`, `hold_down.hold`, `hold_down.max_hold`.
pub const HOLD_DOWN: Range = Range::seconds_from(0.0);
/// `retry.initial`, `retry.max`.
pub const RETRY: Range = Range::seconds_from(0.001);
/// `devd bench --seconds`.
pub const BENCH_SECONDS: Range = Range::seconds_from(0.01);
/// `lab --duration`.
pub const LAB_SECONDS: Range = Range {
    min: 1.0,
    above: false,
    max: 3600.0,
    unit: Unit::Seconds,
};
/// `lab`: the packets per direction it keeps a send and an arrival time for (pps × duration).
pub const LAB_MAX_PACKETS: u64 = 10_000_000;
/// `[sim] speed`, `run --speed`, `simulate --speed`.
pub const SPEED: Range = Range {
    min: 0.0,
    above: true,
    max: MAX_SPEED,
    unit: Unit::Factor,
};

impl Range {
    const fn seconds_from(min: f64) -> Range {
        Range {
            min,
            above: false,
            max: MAX_SECONDS,
            unit: Unit::Seconds,
        }
    }

    const fn seconds_above(min: f64) -> Range {
        Range {
            min,
            above: true,
            max: MAX_SECONDS,
            unit: Unit::Seconds,
        }
    }

    /// Whether `v` is in the range (NaN never is).
    pub fn contains(&self, v: f64) -> bool {
        let low = if self.above {
            v > self.min
        } else {
            v >= self.min
        };
        low && v <= self.max
    }

    /// The range in words: `a number of seconds from 2 to 86400`.
    pub fn describe(&self) -> String {
        let what = match self.unit {
            Unit::Seconds => "a number of seconds",
            Unit::Factor => "a number",
        };
        if self.above {
            format!("{what} above {} and at most {}", self.min, self.max)
        } else {
            format!("{what} from {} to {}", self.min, self.max)
        }
    }

    /// `v`, or `NAME: expected <range>, found V`.
    pub fn check(&self, name: &str, v: f64) -> Result<f64, String> {
        if self.contains(v) {
            Ok(v)
        } else {
            Err(format!(
                "{name}: expected {}, found {}",
                self.describe(),
                number(v)
            ))
        }
    }

    /// `v` seconds as a duration, checked as [`Range::check`] does.
    pub fn seconds(&self, name: &str, v: f64) -> Result<Duration, String> {
        debug_assert_eq!(self.unit, Unit::Seconds);
        // In range, so finite, non-negative and far from Duration's limit.
        self.check(name, v).map(Duration::from_secs_f64)
    }
}

/// A number as a user wrote it: `1.5`, `2`, and `1e300` rather than its 301 digits.
fn number(v: f64) -> String {
    let short = format!("{v:?}");
    if short.contains('e') || !v.is_finite() {
        short
    } else {
        v.to_string()
    }
}

/// `d` times `factor`, saturating at `Duration::MAX` instead of panicking as
/// `Duration::mul_f64` does (a virtual clock running at `speed` for a long time).
pub fn scale(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(if factor < 0.0 {
        Duration::ZERO
    } else {
        Duration::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_non_number_and_every_number_out_of_range_is_refused_with_the_range() {
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1.0,
            86_400.001,
            1.999,
            -0.0 - 1e-300,
        ] {
            let e = VF_DELAY.seconds("vf_delay", v).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "vf_delay: expected a number of seconds from 2 to 86400, found {}",
                    number(v)
                )
            );
        }
        assert_eq!(number(1e300), "1e300");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(-1.0), "-1");
        assert_eq!(number(1.999), "1.999");
        let e = POSITIVE_SECONDS.seconds("resync", 0.0).unwrap_err();
        assert_eq!(
            e,
            "resync: expected a number of seconds above 0 and at most 86400, found 0"
        );
        let e = SPEED.check("--speed", 1e300).unwrap_err();
        assert_eq!(
            e,
            "--speed: expected a number above 0 and at most 1000000, found 1e300"
        );
    }

    #[test]
    fn the_ends_of_each_range_are_accepted_as_documented() {
        assert_eq!(VF_DELAY.seconds("k", 2.0), Ok(Duration::from_secs(2)));
        assert_eq!(
            VF_DELAY.seconds("k", MAX_SECONDS),
            Ok(Duration::from_secs(86_400))
        );
        assert_eq!(HOLD_DOWN.seconds("k", 0.0), Ok(Duration::ZERO));
        assert_eq!(RETRY.seconds("k", 0.001), Ok(Duration::from_millis(1)));
        assert!(RETRY.seconds("k", 0.0009).is_err());
        assert_eq!(
            POSITIVE_SECONDS.seconds("k", 1e-9),
            Ok(Duration::from_nanos(1))
        );
        assert_eq!(SPEED.check("k", MAX_SPEED), Ok(MAX_SPEED));
        assert!(SPEED.check("k", 0.0).is_err());
    }

    #[test]
    fn scaling_saturates_instead_of_panicking() {
        assert_eq!(scale(Duration::from_secs(2), 1.5), Duration::from_secs(3));
        assert_eq!(scale(Duration::from_secs(1), 1e300), Duration::MAX);
        assert_eq!(scale(Duration::from_secs(1), f64::INFINITY), Duration::MAX);
        assert_eq!(scale(Duration::MAX, 2.0), Duration::MAX);
        assert_eq!(scale(Duration::from_secs(1), -1.0), Duration::ZERO);
    }
}
