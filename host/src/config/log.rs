//! The `[log]` section: which files the host writes, at which level, in which format, how
//! they rotate; and the readable stderr log.
//!
//! The defaults are the original framework's settings: `host/debug.log` (everything, verbose),
//! `game/info.log` (INFO and above, simple, daily, 20 days kept) and `game/error.log` (ERROR
//! and above, verbose, daily, 20 days kept).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Lowest level written to stderr in a readable form, or `off`.
    pub stderr: LevelName,
    /// Lines that may wait for each output's writer thread; beyond them lines are dropped and
    /// counted.
    pub queue_size: usize,
    /// The log files, by name; `level = "off"` turns one off.
    pub files: BTreeMap<String, LogFileConfig>,
}

/// One log file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogFileConfig {
    /// Relative to `paths.log_dir`.
    pub path: PathBuf,
    /// Lowest level written, or `off`.
    pub level: LevelName,
    pub format: LineFormat,
    pub rotate: Rotation,
    /// Rotated files kept (`name.1` is yesterday's, `name.<keep>` the oldest).
    pub keep: usize,
}

/// A level name as operators write it (Python's names, as in the original's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LevelName {
    Off,
    Critical,
    Error,
    #[serde(alias = "warn")]
    Warning,
    Info,
    Debug,
    Trace,
}

/// How a line looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// `[LEVEL] [dd/Mon/YYYY HH:MM:SS] [source:line] message key=value ...`
    Verbose,
    /// `[LEVEL] [dd/Mon/YYYY HH:MM:SS] message key=value ...`
    Simple,
}

/// When a file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    Never,
    /// At the first line of a new local day.
    Daily,
}

impl LevelName {
    /// The slog level, `None` for `off`.
    pub fn level(self) -> Option<slog::Level> {
        match self {
            LevelName::Off => None,
            LevelName::Critical => Some(slog::Level::Critical),
            LevelName::Error => Some(slog::Level::Error),
            LevelName::Warning => Some(slog::Level::Warning),
            LevelName::Info => Some(slog::Level::Info),
            LevelName::Debug => Some(slog::Level::Debug),
            LevelName::Trace => Some(slog::Level::Trace),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        let file = |path: &str, level, format, rotate, keep| LogFileConfig {
            path: path.into(),
            level,
            format,
            rotate,
            keep,
        };
        use LevelName::{Debug, Error, Info};
        use LineFormat::{Simple, Verbose};
        use Rotation::{Daily, Never};
        LogConfig {
            stderr: LevelName::Info,
            queue_size: 8192,
            files: BTreeMap::from([
                (
                    "debug".into(),
                    file("host/debug.log", Debug, Verbose, Never, 0),
                ),
                (
                    "info".into(),
                    file("game/info.log", Info, Simple, Daily, 20),
                ),
                (
                    "error".into(),
                    file("game/error.log", Error, Verbose, Daily, 20),
                ),
            ]),
        }
    }
}

impl Default for LogFileConfig {
    /// What a new file entry gets for the keys it leaves out.
    fn default() -> Self {
        LogFileConfig {
            path: PathBuf::new(),
            level: LevelName::Info,
            format: LineFormat::Verbose,
            rotate: Rotation::Daily,
            keep: 20,
        }
    }
}

impl LogConfig {
    /// Checks what types alone cannot; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        if self.queue_size == 0 {
            return Err("log.queue_size must be at least 1".into());
        }
        for (name, file) in &self.files {
            let key = format!("log.files.{name}");
            if file.path.as_os_str().is_empty() {
                return Err(format!("{key}.path is missing: a path under paths.log_dir"));
            }
            if file.path.is_absolute() || file.path.components().any(|c| c.as_os_str() == "..") {
                return Err(format!(
                    "{key}.path must stay under paths.log_dir (relative, no `..`)"
                ));
            }
            if file.rotate == Rotation::Daily && !(1..=366).contains(&file.keep) {
                return Err(format!("{key}.keep must be from 1 to 366 days"));
            }
        }
        Ok(())
    }
}
