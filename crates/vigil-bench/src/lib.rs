//! Dev-only benchmark support for vigil's criterion benches: a criterion measurement that
//! reads the benchmark thread's CPU time, so figures taken on a shared, loaded machine
//! count only the work of the code under test, and a `main` that picks it.
//!
//! Written here rather than taken from a crate: criterion ships wall time only, and the
//! measurement is twenty lines over `cpu-time`.

use std::hint::black_box;
use std::time::Instant;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput};

/// This thread's CPU time in nanoseconds, if the platform has the clock.
pub fn thread_cpu_ns() -> Option<u64> {
    let t = cpu_time::ThreadTime::try_now().ok()?;
    u64::try_from(t.as_duration().as_nanos()).ok()
}

/// Criterion measurement: thread CPU time in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns().unwrap_or(0)
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().unwrap_or(0).saturating_sub(start).max(1)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

#[derive(Debug)]
struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e-3, "µs"),
            t if t < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }
    fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let (per_iter, unit) = match throughput {
            Throughput::Elements(n) => (*n as f64, "Melem/s (cpu)"),
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (*n as f64, "MB/s (cpu)"),
            Throughput::Bits(n) => (*n as f64, "Mbit/s (cpu)"),
            _ => (1.0, "M/s (cpu)"),
        };
        values.iter_mut().for_each(|v| *v = per_iter * 1e3 / *v);
        unit
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// Runs a bench binary: `cpu` with [`ThreadCpu`] (after checking that the clock moves), or
/// `wall` with criterion's wall time when `VIGIL_BENCH_CLOCK=wall` or the platform has no
/// thread CPU clock. Both are usually the same generic function.
pub fn main(wall: impl FnOnce(&mut Criterion<WallTime>), cpu: impl FnOnce(&mut Criterion<ThreadCpu>)) {
    let use_wall = std::env::var("VIGIL_BENCH_CLOCK").as_deref() == Ok("wall") || thread_cpu_ns().is_none();
    if use_wall {
        let mut c: Criterion<WallTime> = Criterion::default().configure_from_args();
        wall(&mut c);
        c.final_summary();
    } else {
        // Check that the clock moves before trusting it.
        let t0 = thread_cpu_ns().unwrap_or(0);
        let spin = Instant::now();
        while spin.elapsed().as_millis() < 20 {
            black_box(0u64);
        }
        assert!(thread_cpu_ns().unwrap_or(0) > t0, "thread CPU clock does not advance");
        let mut c = Criterion::default().with_measurement(ThreadCpu).configure_from_args();
        cpu(&mut c);
        c.final_summary();
    }
}
