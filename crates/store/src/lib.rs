//! facedb-store (work in progress).
