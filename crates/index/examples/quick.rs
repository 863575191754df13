//! Quick scan timing with thread CPU time (robust to a busy machine):
//! `RAYON_NUM_THREADS=1 cargo run --release -p facedb-index --example quick`
use facedb_index::*;
use std::time::Instant;

fn cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dim = 128;
    let mut s = 1u64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let v: Vec<f32> = (0..n * dim).map(|_| rnd()).collect();
    let q: Vec<f32> = (0..100 * dim).map(|_| rnd()).collect();
    for metric in [Metric::L2, Metric::Ip] {
        let p = FlatParams {
            metric,
            k: 10,
            range: KeyRange::ALL,
            allowed: None,
            tiebreak: &by_row,
        };
        for _ in 0..3 {
            let (t, c) = (Instant::now(), cpu_s());
            for i in 0..10 {
                flat_search(&v, dim, &q[i * dim..(i + 1) * dim], &p);
            }
            let (a, ac) = (t.elapsed() / 10, (cpu_s() - c) / 10.0);
            let (t, c) = (Instant::now(), cpu_s());
            flat_search(&v, dim, &q, &p);
            let (b, bc) = (t.elapsed(), cpu_s() - c);
            println!(
                "{metric:?} nq=1 wall {a:?} cpu {:.1} ms | nq=100 wall {b:?} cpu {:.0} ms ({:.0} q/s per cpu-s)",
                ac * 1e3,
                bc * 1e3,
                100.0 / bc
            );
        }
    }
}
