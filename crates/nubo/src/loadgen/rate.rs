//! When the open model's arrivals are due. The rate is a piecewise-linear curve over the run
//! (constant, a ramp, or the black-friday profile), and the n-th arrival is due at the moment
//! the curve's integral reaches n: arrivals keep their schedule however slowly the shop
//! answers, which is what lets latency be measured from the intended send time.

use std::time::Duration;

/// Arrivals per second over the run: straight lines between points `(second, rate)`, the first
/// at 0 and the last at the end of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct RateCurve {
    points: Vec<(f64, f64)>,
}

/// How many times the base rate black friday peaks at.
pub const PEAK: f64 = 10.0;

impl RateCurve {
    pub fn constant(rate: f64, seconds: f64) -> Self {
        Self::ramp(rate, rate, seconds)
    }

    pub fn ramp(from: f64, to: f64, seconds: f64) -> Self {
        Self {
            points: vec![(0.0, from), (seconds, to)],
        }
    }

    /// Calm at `base` for the first 20% of the run, up to 10× over 30%, at the peak for 20%,
    /// back down to `base` over the last 30%.
    pub fn black_friday(base: f64, seconds: f64) -> Self {
        let at = |share: f64| share * seconds;
        Self {
            points: vec![
                (0.0, base),
                (at(0.2), base),
                (at(0.5), base * PEAK),
                (at(0.7), base * PEAK),
                (seconds, base),
            ],
        }
    }

    /// The intended rate at second `t`.
    pub fn rate_at(&self, t: f64) -> f64 {
        for pair in self.points.windows(2) {
            let ((t0, r0), (t1, r1)) = (pair[0], pair[1]);
            if t <= t1 {
                if t1 <= t0 {
                    return r1;
                }
                return r0 + (r1 - r0) * ((t - t0).max(0.0) / (t1 - t0));
            }
        }
        self.points.last().map_or(0.0, |p| p.1)
    }

    /// Arrivals due over the whole run.
    pub fn total(&self) -> f64 {
        self.due_by(f64::INFINITY)
    }

    /// Arrivals due from the start until second `t`: the curve's integral.
    pub fn due_by(&self, t: f64) -> f64 {
        self.points
            .windows(2)
            .map(|p| {
                let ((t0, r0), (t1, _)) = (p[0], p[1]);
                let end = t.min(t1);
                if end <= t0 {
                    return 0.0;
                }
                (end - t0) * (r0 + self.rate_at(end)) / 2.0
            })
            .sum()
    }

    /// The mean intended rate between seconds `from` and `to`.
    pub fn mean_rate(&self, from: f64, to: f64) -> f64 {
        if to <= from {
            return self.rate_at(to);
        }
        (self.due_by(to) - self.due_by(from)) / (to - from)
    }

    /// When the n-th arrival (counting from 1) is due, in seconds from the start: the moment
    /// the curve's integral reaches `n`. None past the end of the run.
    pub fn due(&self, n: u64) -> Option<f64> {
        let mut left = n as f64;
        for pair in self.points.windows(2) {
            let ((t0, r0), (t1, r1)) = (pair[0], pair[1]);
            let span = t1 - t0;
            let area = span * (r0 + r1) / 2.0;
            // A hair of slack so that the last arrival of an exact total is not lost to rounding.
            if left <= area + 1e-9 && span > 0.0 {
                let slope = (r1 - r0) / span;
                // Solves r0·τ + slope·τ²/2 = left for τ in the form that stays exact when the
                // slope is 0 or negative.
                let root = (r0 * r0 + 2.0 * slope * left).max(0.0).sqrt();
                let tau = if left <= 0.0 {
                    0.0
                } else {
                    2.0 * left / (r0 + root)
                };
                return Some(t0 + tau.min(span));
            }
            left -= area;
        }
        None
    }
}

/// The open model's arrivals, in order: each one's intended time since the start.
pub struct Schedule {
    curve: RateCurve,
    next: u64,
}

impl Schedule {
    pub fn new(curve: RateCurve) -> Self {
        Self { curve, next: 1 }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let at = self.curve.due(self.next)?;
        self.next += 1;
        Some(Duration::from_secs_f64(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn a_constant_rate_spaces_arrivals_evenly() {
        let times: Vec<Duration> = Schedule::new(RateCurve::constant(4.0, 2.0)).collect();
        assert_eq!(times.len(), 8, "4 a second for 2 seconds");
        assert_eq!(times[0], Duration::from_millis(250));
        assert!(close(times[7].as_secs_f64(), 2.0));
        for pair in times.windows(2) {
            assert!(close((pair[1] - pair[0]).as_secs_f64(), 0.25));
        }
    }

    #[test]
    fn a_ramp_brings_arrivals_closer_together_as_the_rate_climbs() {
        // From 0 to 20 a second over 10 s: 100 arrivals, the n-th at sqrt(n) seconds.
        let curve = RateCurve::ramp(0.0, 20.0, 10.0);
        assert!(close(curve.total(), 100.0));
        let times: Vec<f64> = Schedule::new(curve.clone())
            .map(|d| d.as_secs_f64())
            .collect();
        assert_eq!(times.len(), 100);
        assert!(close(times[0], 1.0) && close(times[24], 5.0) && close(times[99], 10.0));
        assert!(close(curve.rate_at(5.0), 10.0));
        // Down again: the same arrivals, mirrored.
        let down: Vec<f64> = Schedule::new(RateCurve::ramp(20.0, 0.0, 10.0))
            .map(|d| d.as_secs_f64())
            .collect();
        assert_eq!(down.len(), 100);
        assert!(
            close(down[74], 10.0 - 5.0),
            "75 arrivals by 5 s: {}",
            down[74]
        );
    }

    #[test]
    fn black_friday_climbs_to_ten_times_the_base_rate_and_comes_back() {
        let curve = RateCurve::black_friday(10.0, 100.0);
        assert!(close(curve.rate_at(10.0), 10.0), "calm");
        assert!(close(curve.rate_at(35.0), 55.0), "halfway up");
        assert!(close(curve.rate_at(60.0), 100.0), "the peak");
        assert!(close(curve.rate_at(85.0), 55.0), "halfway down");
        assert!(close(curve.rate_at(100.0), 10.0), "calm again");
        assert!(close(curve.mean_rate(20.0, 50.0), 55.0), "rising");
        // A second at 10/s, then one rising from 10/s to 13/s.
        assert!(close(curve.mean_rate(19.0, 21.0), (10.0 + 11.5) / 2.0));
        // 20 s at 10, 30 s averaging 55, 20 s at 100, 30 s averaging 55.
        assert!(close(curve.total(), 200.0 + 1650.0 + 2000.0 + 1650.0));
        let times: Vec<f64> = Schedule::new(curve).map(|d| d.as_secs_f64()).collect();
        assert_eq!(times.len(), 5500);
        let in_second = |s: f64| times.iter().filter(|t| **t > s && **t <= s + 1.0).count();
        assert_eq!(in_second(5.0), 10);
        assert_eq!(in_second(60.0), 100);
        assert!(times.windows(2).all(|p| p[0] < p[1]), "in order");
    }

    #[test]
    fn nothing_is_due_at_a_rate_of_zero() {
        assert_eq!(Schedule::new(RateCurve::constant(0.0, 10.0)).count(), 0);
    }
}
