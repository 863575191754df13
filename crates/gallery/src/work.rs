//! Running the face pipeline on many files: one [`Engine`] per worker thread, and the
//! layout of an enrolment folder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use facedb_face::{set_blas_threads, Engine, FaceError, ModelFiles};

use crate::error::{GalleryError, Result};

/// The number of worker threads to use by default: the machine's available parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Calls `work(engine, item)` for every item on `threads` worker threads, each with its own
/// [`Engine`] (dlib objects are not thread-safe), and `done(index, result)` on the calling
/// thread as results arrive (in completion order, not input order). With more than one
/// thread, OpenBLAS is limited to one thread per call ([`set_blas_threads`]) so the cores
/// are not oversubscribed.
///
/// # Errors
/// [`GalleryError::Face`] if an engine cannot be loaded (the items not yet started are
/// then not processed).
pub fn for_each_with_engine<T, R>(
    models: &ModelFiles,
    threads: usize,
    items: &[T],
    work: impl Fn(&mut Engine, &T) -> R + Sync,
    mut done: impl FnMut(usize, R),
) -> Result<()>
where
    T: Sync,
    R: Send,
{
    let threads = threads.clamp(1, items.len().max(1));
    if threads > 1 {
        set_blas_threads(1);
    }
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<FaceError>> = Mutex::new(None);
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, failed, work) = (&next, &failed, &work);
            s.spawn(move || {
                let mut engine = match Engine::from_models(models) {
                    Ok(e) => e,
                    Err(e) => {
                        if let Ok(mut f) = failed.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if tx.send((i, work(&mut engine, item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            done(i, r);
        }
    });
    match failed.into_inner().ok().flatten() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// One image file of an enrolment folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollItem {
    /// The person (the sub-folder's name).
    pub person: String,
    /// The file.
    pub path: PathBuf,
    /// `person/file name`, the name part of the image key ([`crate::image_key`]).
    pub name: String,
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let io = |source| GalleryError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// The image files of a folder, sorted by name: regular files (symbolic links followed)
/// whose names do not start with `.`. Every file is offered to the decoder, which decides
/// by content (a text file gives a per-file error).
///
/// # Errors
/// [`GalleryError::Io`] if the folder cannot be listed.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(read_dir_sorted(dir)?
        .into_iter()
        .filter(|(name, path)| !name.starts_with('.') && path.is_file())
        .map(|(_, path)| path)
        .collect())
}

/// The enrolment plan of `dir`: one sub-folder per person (folders whose names start with
/// `_` or `.` are not people and are skipped), each holding that person's images (see
/// [`image_files`]; nested folders are not entered). Files directly in `dir` are ignored.
///
/// # Errors
/// [`GalleryError::Io`] if a folder cannot be listed.
pub fn enroll_plan(dir: &Path) -> Result<Vec<EnrollItem>> {
    let mut out = Vec::new();
    for (name, path) in read_dir_sorted(dir)? {
        if name.starts_with('_') || name.starts_with('.') || !path.is_dir() {
            continue;
        }
        for file in image_files(&path)? {
            let fname = file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(EnrollItem {
                person: name.clone(),
                name: format!("{name}/{fname}"),
                path: file,
            });
        }
    }
    Ok(out)
}
