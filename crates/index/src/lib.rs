//! facedb-index (work in progress).
