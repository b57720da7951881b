//! The drain that feeds every log file: it formats a record once (date, message, pairs) and
//! appends a line to each file whose level the record reaches, in that file's format.

use super::file::LogFile;
use super::format::{write_head, LineBody, Stamp};
use super::writer::Buffering;
use crate::clock::Clock;
use crate::config::LogFileConfig;
use slog::{Drain, Never, OwnedKVList, Record};
use std::path::Path;
use std::sync::Arc;

/// The log files as one slog drain.
pub struct FileDrain {
    files: Vec<(Arc<LogFile>, slog::Level)>,
    clock: Arc<dyn Clock>,
}

// slog asks a root drain to be unwind-safe; the clock (`dyn Clock`) does not say it is. A
// panic while a line is formatted leaves at most that line unfinished in a batch, and every
// lock a file takes is taken poison-tolerant.
impl std::panic::UnwindSafe for FileDrain {}
impl std::panic::RefUnwindSafe for FileDrain {}

/// The files behind a [`FileDrain`], to close them (write out what waits) at exit.
pub struct OpenFiles(Vec<Arc<LogFile>>);

impl FileDrain {
    /// Opens each file of `configs` that is not off, under `log_dir`. On error, the path of
    /// the file that could not be opened is returned with the error.
    pub fn open<'a>(
        log_dir: &Path,
        configs: impl IntoIterator<Item = &'a LogFileConfig>,
        buffering: &Buffering,
        clock: Arc<dyn Clock>,
    ) -> Result<(FileDrain, OpenFiles), (String, std::io::Error)> {
        let mut files = Vec::new();
        for config in configs {
            let Some(level) = config.level.level() else {
                continue;
            };
            let file = LogFile::open(log_dir, config, buffering.clone())
                .map_err(|e| (log_dir.join(&config.path).display().to_string(), e))?;
            files.push((Arc::new(file), level));
        }
        let open = OpenFiles(files.iter().map(|(file, _)| file.clone()).collect());
        Ok((FileDrain { files, clock }, open))
    }

    /// The lowest level any file takes; `None` when there is no file.
    pub fn lowest_level(&self) -> Option<slog::Level> {
        self.files
            .iter()
            .map(|(_, level)| *level)
            .max_by_key(|level| level.as_usize())
    }
}

impl Drain for FileDrain {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), Never> {
        let level = record.level();
        let mut takers = self.files.iter().filter(|(_, min)| level.is_at_least(*min));
        let Some(first) = takers.next() else {
            return Ok(());
        };
        let stamp = Stamp::of(self.clock.now_millis());
        LineBody::with(|body| {
            body.format(record, values);
            for (file, _) in std::iter::once(first).chain(takers) {
                file.push(level, &stamp, |out| {
                    write_head(out, file.format(), level, &stamp, record);
                    out.extend_from_slice(body.text.as_bytes());
                    out.push(b'\n');
                });
            }
        });
        Ok(())
    }
}

impl OpenFiles {
    /// Writes out every waiting line and stops the writer threads.
    pub fn close(&self) {
        for file in &self.0 {
            file.close();
        }
    }
}

#[cfg(test)]
impl OpenFiles {
    pub fn first(&self) -> &LogFile {
        &self.0[0]
    }
}
