use facedb_index::*;
use std::time::Instant;
fn main() {
    let n = 1_000_000;
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
            let t = Instant::now();
            let r = flat_search(&v, dim, &q[..dim], &p);
            let a = t.elapsed();
            let t = Instant::now();
            let r2 = flat_search(&v, dim, &q, &p);
            let b = t.elapsed();
            println!(
                "{metric:?} nq=1 {:?} nq=100 {:?} ({:.0} q/s) {}",
                a,
                b,
                100.0 / b.as_secs_f64(),
                r[0][0].row == r2[0][0].row
            );
        }
    }
}
