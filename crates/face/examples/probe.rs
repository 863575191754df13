use facedb_face::{load_image, Engine};
fn main() {
    let mut e = Engine::load(std::env::args().nth(1).unwrap()).unwrap();
    for p in std::env::args().skip(2) {
        let img = load_image(&p).unwrap();
        let raw = e.detect_raw(&img, 1).unwrap();
        for d in raw {
            let clipped = d.rect.clipped(img.width(), img.height());
            for (name, b) in [("raw", d.rect), ("clipped", clipped)] {
                let l = e.landmarks(&img, &b).unwrap();
                let enc = e.encode(&img, &l, 1).unwrap();
                println!(
                    "{p} {name} {:?} {:?} {:?}",
                    b,
                    l.points.map(|p| (p.x, p.y)),
                    &enc[..4]
                );
            }
        }
    }
}
