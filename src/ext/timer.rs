//! The clock behind an extension's ns/run counter: cheap to read, calibrated once.
//!
//! A timed run reads the clock twice. `Instant::now` costs about 27 ns a read on this kind of
//! guest (clock_gettime through the vDSO), more than a JIT-compiled action runs, so on x86_64
//! the timer reads the time-stamp counter (`rdtsc`, about 10 ns), as Open vSwitch's PMD
//! counters and DPDK's `rte_rdtsc` do. Its rate is measured against `Instant` once per
//! process ([`calibrate`], called when an extension loads, never on the fast path), together
//! with the cost of two back-to-back reads, which is taken off every timed run so that ns/run
//! is the program's time, not the clock's. Elsewhere the timer is `Instant`, with the same
//! correction.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The rate and cost of the clock, measured once.
struct Calibration {
    /// Nanoseconds per tick.
    ns_per_tick: f64,
    /// Ticks between two back-to-back reads (the least of many), taken off each interval.
    overhead: u64,
}

static CALIBRATION: OnceLock<Calibration> = OnceLock::new();

/// How long [`calibrate`] compares the tick counter with `Instant`.
const CALIBRATION_SPAN: Duration = Duration::from_millis(2);

/// The process's reference instant for the `Instant` fallback.
#[cfg(not(target_arch = "x86_64"))]
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The current tick count.
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc exists on every x86_64 processor and has no memory effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Measures the clock's rate and read cost, once per process (about 2 ms the first time).
pub fn calibrate() {
    CALIBRATION.get_or_init(measure);
}

/// Nanoseconds from tick count `start` to now, less the cost of reading the clock.
#[inline]
pub fn elapsed_ns(start: u64) -> u64 {
    let d = ticks().wrapping_sub(start);
    // Calibrated when an extension loads; a run of none calibrates here.
    let cal = CALIBRATION.get_or_init(measure);
    (d.saturating_sub(cal.overhead) as f64 * cal.ns_per_tick) as u64
}

#[cold]
fn measure() -> Calibration {
    let overhead = (0..1000)
        .map(|_| {
            let a = ticks();
            ticks().wrapping_sub(a)
        })
        .min()
        .unwrap_or(0);
    let (t0, c0) = (Instant::now(), ticks());
    while t0.elapsed() < CALIBRATION_SPAN {
        std::hint::spin_loop();
    }
    let (ns, c) = (t0.elapsed().as_nanos() as f64, ticks().wrapping_sub(c0));
    Calibration {
        ns_per_tick: if c == 0 { 1.0 } else { ns / c as f64 },
        overhead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_measures_as_long_as_instant_says() {
        calibrate();
        let (t0, c0) = (Instant::now(), ticks());
        std::thread::sleep(Duration::from_millis(30));
        let ns = elapsed_ns(c0) as f64;
        let want = t0.elapsed().as_nanos() as f64;
        // Calibrated over 2 ms; a 30 ms interval agrees with Instant within a few percent.
        assert!(
            (ns / want - 1.0).abs() < 0.1,
            "timer says {ns} ns, Instant says {want} ns"
        );
    }

    #[test]
    fn back_to_back_reads_measure_nothing() {
        calibrate();
        let least = (0..1000)
            .map(|_| elapsed_ns(ticks()))
            .min()
            .expect("measured");
        assert_eq!(least, 0, "the read cost is taken off every interval");
    }
}
