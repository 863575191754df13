//! Builds the C/C++ shim (cpp/) against Debian's libdlib-dev 19.24 and libjpeg(-turbo).
//!
//! Needs the packages that `scripts/setup-face.sh` installs: libdlib-dev, libjpeg-dev,
//! libpng-dev and a BLAS/LAPACK providing `libblas.so.3` / `liblapack.so.3`
//! (libopenblas0-pthread). No `-march` flags: they change dlib's HOG rounding and move
//! detected boxes by a pixel.

fn main() {
    for f in ["cpp/shim.cpp", "cpp/jpeg.c", "cpp/shim.h", "build.rs"] {
        println!("cargo:rerun-if-changed={f}");
    }
    for (header, package) in [
        ("/usr/include/dlib/dnn.h", "libdlib-dev"),
        ("/usr/include/jpeglib.h", "libjpeg-dev"),
    ] {
        if !std::path::Path::new(header).exists() {
            panic!("{header} not found: install {package} with `sudo scripts/setup-face.sh` (Debian 12)");
        }
    }
    // dlib's templates are compiled into this shim: always optimise them, also in debug
    // builds (at -O0 one face descriptor takes seconds).
    cc::Build::new()
        .cpp(true)
        .file("cpp/shim.cpp")
        .std("c++14")
        .opt_level(2)
        .debug(false)
        .warnings(false)
        .define("DLIB_DISABLE_ASSERTS", None)
        .compile("facedb_face_shim");
    cc::Build::new()
        .file("cpp/jpeg.c")
        .opt_level(2)
        .debug(false)
        .compile("facedb_face_jpeg");
    println!("cargo:rustc-link-lib=dylib=dlib");
    println!("cargo:rustc-link-lib=dylib=jpeg");
    // Debian ships only the versioned names without the -dev packages; link them verbatim.
    println!("cargo:rustc-link-lib=dylib:+verbatim=libblas.so.3");
    println!("cargo:rustc-link-lib=dylib:+verbatim=liblapack.so.3");
}
