//! The log files: where they go, what each one takes, how a line looks, how they roll over
//! day by day and how many days are kept, and what happens when a batch is full; the stderr
//! log: its lines as slog-term wrote them, none lost, in order, written at close.
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use super::files::{FileDrain, OpenFiles};
use super::stderr::{StderrDrain, StderrWriter};
use super::writer::{Buffering, FLUSH_INTERVAL};
use super::*;
use crate::clock::ManualClock;
use crate::config::{LevelName, LineFormat, LogFileConfig, Rotation};
use chrono::{Local, TimeZone};
use regex::Regex;
use slog::{debug, error, info, warn};
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// 1 November 2026 at noon, local time: far from midnight, so whole days can be added.
fn noon_first_of_november() -> i64 {
    Local
        .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .expect("noon exists on every day")
        .timestamp_millis()
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn files_only() -> LogConfig {
    LogConfig {
        stderr: LevelName::Off,
        ..LogConfig::default()
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn default_files_take_their_levels_in_their_formats() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let (log, guard) = init(&files_only(), dir.path(), clock, Counter::default()).unwrap();
    let log = log.new(o!("module" => "mall", "version" => "1.0.0"));
    debug!(log, "cache warmed"; "items" => 12);
    info!(log, "request"; "cmd" => 1101, "player" => "alice", "ret" => 0, "ms" => 3);
    warn!(log, "slow call"; "ms" => 900);
    error!(log, "store failed"; "reason" => "disk full");
    drop(guard);

    let debug_log = read(&dir.path().join("host/debug.log"));
    let info_log = read(&dir.path().join("game/info.log"));
    let error_log = read(&dir.path().join("game/error.log"));

    let verbose =
        Regex::new(r"^\[(DEBUG|INFO|WARNING|ERROR)\] \[01/Nov/2026 12:00:00\] \[host/src/logging/tests\.rs:\d+\] \S").unwrap();
    let simple = Regex::new(r"^\[(INFO|WARNING|ERROR)\] \[01/Nov/2026 12:00:00\] [a-z]").unwrap();

    let lines: Vec<&str> = debug_log.lines().collect();
    assert_eq!(lines.len(), 4, "debug.log takes everything:\n{debug_log}");
    assert!(lines.iter().all(|l| verbose.is_match(l)), "{debug_log}");
    assert!(lines[0].starts_with("[DEBUG]"), "{debug_log}");
    assert!(
        lines[0].ends_with("cache warmed items=12 module=mall version=1.0.0"),
        "{debug_log}"
    );

    let lines: Vec<&str> = info_log.lines().collect();
    assert_eq!(lines.len(), 3, "info.log takes INFO and above:\n{info_log}");
    assert!(lines.iter().all(|l| simple.is_match(l)), "{info_log}");
    assert_eq!(
        lines[0],
        "[INFO] [01/Nov/2026 12:00:00] request cmd=1101 player=alice ret=0 ms=3 module=mall version=1.0.0"
    );
    assert!(lines[2].contains(r#"reason="disk full""#), "{info_log}");

    let lines: Vec<&str> = error_log.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "error.log takes ERROR and above:\n{error_log}"
    );
    assert!(verbose.is_match(lines[0]), "{error_log}");
    assert!(lines[0].starts_with("[ERROR]"), "{error_log}");
}

#[test]
fn levels_paths_and_formats_follow_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = files_only();
    config.files.get_mut("debug").unwrap().level = LevelName::Off;
    let info = config.files.get_mut("info").unwrap();
    info.path = "elsewhere/all.log".into();
    info.level = LevelName::Warning;
    info.format = LineFormat::Verbose;
    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let (log, guard) = init(&config, dir.path(), clock, Counter::default()).unwrap();
    info!(log, "not taken");
    warn!(log, "taken");
    drop(guard);

    assert!(
        !dir.path().join("host/debug.log").exists(),
        "an `off` file is not created"
    );
    assert!(!dir.path().join("game/info.log").exists());
    let text = read(&dir.path().join("elsewhere/all.log"));
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("[WARNING] [01/Nov/2026 12:00:00] [host/src/logging/tests.rs:"));
    assert!(text.trim_end().ends_with("] taken"), "{text}");
}

#[test]
fn a_line_is_always_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let (log, guard) = init(&files_only(), dir.path(), clock, Counter::default()).unwrap();
    info!(log, "first\n[ERROR] forged"; "note" => "a\nb", "empty" => "");
    drop(guard);
    let text = read(&dir.path().join("game/info.log"));
    assert_eq!(
        text,
        "[INFO] [01/Nov/2026 12:00:00] first\\n[ERROR] forged note=a\\nb empty=\"\"\n"
    );
}

#[test]
fn nothing_is_lost_when_the_guard_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        queue_size: 20_000,
        ..files_only()
    };
    let dropped = Counter::default();
    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let (log, guard) = init(&config, dir.path(), clock, dropped.clone()).unwrap();
    for n in 0..10_000 {
        info!(log, "request"; "n" => n);
    }
    drop(guard);
    assert_eq!(dropped.get(), 0);
    let text = read(&dir.path().join("game/info.log"));
    assert_eq!(text.lines().count(), 10_000);
    assert!(text.ends_with("request n=9999\n"));
}

/// The info file alone, daily, with `buffering`; closing the returned files writes it out.
fn daily_file_with(
    dir: &Path,
    keep: usize,
    clock: Arc<ManualClock>,
    buffering: &Buffering,
) -> (Logger, OpenFiles) {
    let config = LogFileConfig {
        path: "game/info.log".into(),
        level: LevelName::Info,
        format: LineFormat::Simple,
        rotate: Rotation::Daily,
        keep,
    };
    let (drain, files) = FileDrain::open(dir, [&config], buffering, clock).unwrap();
    (Logger::root(drain.fuse(), o!()), files)
}

fn daily_file(dir: &Path, keep: usize, clock: Arc<ManualClock>) -> (Logger, OpenFiles) {
    daily_file_with(dir, keep, clock, &buffering(8192, FLUSH_INTERVAL))
}

fn buffering(capacity: usize, flush_interval: Duration) -> Buffering {
    Buffering {
        capacity,
        flush_interval,
        dropped: Counter::default(),
    }
}

/// Long enough that only a warning, a half-full batch or closing writes anything.
const NEVER: Duration = Duration::from_secs(3600);

/// Reads `path` until `wanted` is in it; a writer that never writes fails after 10 s.
fn read_until(path: &Path, wanted: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(wanted) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{wanted:?} was never written:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn daily_files_roll_over_at_a_new_day_and_keep_the_configured_number() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let (log, files) = daily_file(dir.path(), 3, clock.clone());
    for day in 1..=6 {
        info!(log, "morning"; "day" => day);
        clock.advance_millis(DAY_MS / 4);
        info!(log, "evening"; "day" => day);
        clock.advance_millis(3 * DAY_MS / 4);
    }
    // One batch holds all six days: each day's lines still go to that day's file.
    files.close();
    let base = dir.path().join("game/info.log");
    let day_of = |path: &Path| {
        let text = read(path);
        assert_eq!(text.lines().count(), 2, "one file per day:\n{text}");
        text.lines()
            .next()
            .unwrap()
            .split("day=")
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(day_of(&base), "6");
    assert!(read(&base).starts_with("[INFO] [06/Nov/2026 12:00:00] morning"));
    for (suffix, day) in [(1, "5"), (2, "4"), (3, "3")] {
        assert_eq!(day_of(&base.with_extension(format!("log.{suffix}"))), day);
    }
    assert!(
        !base.with_extension("log.4").exists(),
        "only 3 earlier days are kept"
    );
}

#[test]
fn twenty_days_are_kept_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let keep = LogConfig::default().files["info"].keep;
    assert_eq!(keep, 20);
    let (log, files) = daily_file(dir.path(), keep, clock.clone());
    for day in 1..=25 {
        info!(log, "line"; "day" => day);
        clock.advance_millis(DAY_MS);
    }
    files.close();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("game"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        21,
        "today's file and 20 earlier days: {names:?}"
    );
    let oldest = read(&dir.path().join("game/info.log.20"));
    assert!(oldest.contains("day=5"), "{oldest}");
}

#[test]
fn a_file_from_an_earlier_day_is_rolled_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("game/info.log");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "[INFO] [29/Oct/2026 12:00:00] from before the restart\n",
    )
    .unwrap();
    let three_days_ago = std::time::UNIX_EPOCH
        + Duration::from_millis((noon_first_of_november() - 3 * DAY_MS) as u64);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(three_days_ago)
        .unwrap();

    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let (log, files) = daily_file(dir.path(), 20, clock);
    info!(log, "after the restart");
    files.close();
    assert!(read(&path.with_extension("log.1")).contains("from before the restart"));
    assert!(read(&path).contains("after the restart"));
    assert!(!read(&path).contains("before"));
}

#[test]
fn a_warning_is_written_at_once_with_the_lines_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let (log, files) = daily_file_with(dir.path(), 3, clock, &buffering(8192, NEVER));
    let path = dir.path().join("game/info.log");
    info!(log, "buffered");
    warn!(log, "urgent");
    let text = read_until(&path, "urgent");
    assert!(
        text.find("buffered") < text.find("urgent"),
        "in order:\n{text}"
    );
    info!(log, "later");
    assert!(
        !read(&path).contains("later"),
        "an info line waits for the interval"
    );
    files.close();
    assert!(read(&path).ends_with("later\n"), "closing writes it out");
}

#[test]
fn info_lines_are_written_within_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let (log, _files) = daily_file(dir.path(), 3, clock);
    info!(log, "later");
    read_until(&dir.path().join("game/info.log"), "later");
}

#[test]
fn a_file_that_cannot_keep_up_drops_and_counts_lines_and_says_so_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(noon_first_of_november()));
    let buffering = buffering(4, NEVER);
    let (log, files) = daily_file_with(dir.path(), 3, clock, &buffering);
    let stuck = files.first().stall();
    for n in 0..10 {
        info!(log, "burst"; "n" => n);
    }
    // Four lines wait, the rest are dropped: the code that logs never waits for the disk.
    assert_eq!(buffering.dropped.get(), 6);
    drop(stuck);
    let path = dir.path().join("game/info.log");
    read_until(&path, "dropped=6");
    info!(log, "after");
    files.close();

    let text = read(&path);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    for (n, line) in lines[..4].iter().enumerate() {
        assert!(line.ends_with(&format!("burst n={n}")), "{text}");
    }
    assert!(
        lines[4].starts_with(
            "[WARNING] [01/Nov/2026 12:00:00] the log writer fell behind: 6 lines were dropped"
        ),
        "{text}"
    );
    assert!(lines[5].ends_with("after"), "{text}");
    assert_eq!(
        buffering.dropped.get(),
        6,
        "nothing dropped once there was room"
    );
}

/// A stderr that tests read: what the writer thread wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// A logger writing to a captured stderr, its writer and the drop counter.
fn stderr_logger(
    capacity: usize,
    flush_interval: Duration,
    color: bool,
) -> (Logger, StderrWriter<Captured>, Captured, Counter) {
    let out = Captured::default();
    let buffering = buffering(capacity, flush_interval);
    let dropped = buffering.dropped.clone();
    let (drain, writer) = StderrDrain::start(out.clone(), color, buffering).unwrap();
    (Logger::root(drain, o!()), writer, out, dropped)
}

/// An access line and a warning, as the host logs them, with a module's pairs.
fn log_two_lines(log: &Logger) {
    let log = log.new(o!("module" => "mall", "version" => "1.0.0"));
    info!(log, "request";
        "method" => %"POST", "path" => "/logic", "status" => 200u16, "ret" => %0,
        "cmd" => "1203", "player" => "p-1", "ms" => %"0.412");
    warn!(log, "slow call"; "ms" => 900, "note" => "two words");
}

/// `Dec 04 10:20:01.123 `: the date slog-term writes, which differs between two runs.
const STDERR_DATE: &str = r"^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}\.\d{3} ";
/// The date alone, wherever it is (a coloured line has escapes around it).
const STDERR_DATE_ANYWHERE: &str = r"[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}\.\d{3}";

#[test]
fn stderr_lines_read_as_slog_terms_full_format_wrote_them() {
    let (log, writer, out, _) = stderr_logger(64, NEVER, false);
    log_two_lines(&log);
    writer.close();
    let ours = out.text();

    let theirs = Captured::default();
    let decorator = slog_term::PlainSyncDecorator::new(theirs.clone());
    let reference = Logger::root(slog_term::FullFormat::new(decorator).build().fuse(), o!());
    log_two_lines(&reference);
    let theirs = theirs.text();

    let date = Regex::new(STDERR_DATE).unwrap();
    let undated = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| {
                assert!(date.is_match(line), "{line}");
                date.replace(line, "").into_owned()
            })
            .collect()
    };
    assert_eq!(undated(&ours), undated(&theirs));
    assert_eq!(
        undated(&ours)[0],
        "INFO request, ms: 0.412, player: p-1, cmd: 1203, ret: 0, status: 200, path: /logic, method: POST, version: 1.0.0, module: mall"
    );
}

#[test]
fn stderr_keeps_every_line_of_every_thread_in_order() {
    const THREADS: usize = 4;
    const LINES: usize = 5_000;
    let (log, writer, out, dropped) = stderr_logger(THREADS * LINES, FLUSH_INTERVAL, false);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let log = log.clone();
            scope.spawn(move || {
                for n in 0..LINES {
                    info!(log, "request"; "thread" => thread, "n" => n);
                }
            });
        }
    });
    writer.close();
    assert_eq!(dropped.get(), 0);
    let text = out.text();
    let mut next = [0usize; THREADS];
    let pair = Regex::new(r"request, n: (\d+), thread: (\d+)$").unwrap();
    for line in text.lines() {
        let found = pair.captures(line).unwrap_or_else(|| panic!("{line}"));
        let (n, thread): (usize, usize) = (found[1].parse().unwrap(), found[2].parse().unwrap());
        assert_eq!(
            n, next[thread],
            "thread {thread}'s lines out of order at {line}"
        );
        next[thread] += 1;
    }
    assert_eq!(next, [LINES; THREADS], "every line written");
}

#[test]
fn stderr_lines_that_wait_are_written_when_the_log_closes() {
    let (log, writer, out, _) = stderr_logger(1_000, NEVER, false);
    for n in 0..10 {
        info!(log, "request"; "n" => n);
    }
    // Below warning and half the batch, with no interval: nothing is written before closing.
    assert_eq!(out.text(), "");
    writer.close();
    assert_eq!(out.text().lines().count(), 10, "{}", out.text());
    // After closing, whoever logs writes.
    info!(log, "late");
    assert!(out.text().ends_with("INFO late\n"), "{}", out.text());
}

#[test]
fn a_stderr_warning_is_written_at_once() {
    let (log, writer, out, _) = stderr_logger(1_000, NEVER, false);
    info!(log, "before");
    warn!(log, "look");
    let start = std::time::Instant::now();
    while !out.text().contains("WARN look") {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", out.text());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(out.text().contains("INFO before\n"), "{}", out.text());
    drop(writer);
}

#[test]
fn a_stderr_that_cannot_keep_up_drops_and_counts_lines_and_says_so() {
    let (log, writer, out, dropped) = stderr_logger(4, NEVER, false);
    let stuck = writer.stall();
    for n in 0..10 {
        info!(log, "burst"; "n" => n);
    }
    // Four lines wait, the rest are dropped: the code that logs never waits for stderr.
    assert_eq!(dropped.get(), 6);
    drop(stuck);
    let start = std::time::Instant::now();
    while !out.text().contains("dropped: 6") {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", out.text());
        std::thread::sleep(Duration::from_millis(5));
    }
    info!(log, "after");
    writer.close();

    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    for (n, line) in lines[..4].iter().enumerate() {
        assert!(line.ends_with(&format!("burst, n: {n}")), "{text}");
    }
    assert!(
        lines[4].contains(" WARN the log writer fell behind: 6 lines"),
        "{text}"
    );
    assert!(lines[4].ends_with("dropped: 6"), "{text}");
    assert!(lines[5].ends_with("INFO after"), "{text}");
    assert_eq!(dropped.get(), 6, "nothing dropped once there was room");
}

#[test]
fn stderr_on_a_terminal_is_coloured_and_says_the_same() {
    let (log, writer, out, _) = stderr_logger(64, NEVER, true);
    log_two_lines(&log);
    writer.close();
    let text = out.text();
    assert!(text.contains("\x1b[32mINFO"), "{text:?}");
    assert!(text.contains("\x1b[33mWARN"), "{text:?}");
    assert!(text.contains("\x1b[1mrequest"), "{text:?}");

    // Escape for escape, as slog-term's formatter would send them to such a terminal.
    let theirs = Captured::default();
    let reference = Logger::root(
        slog_term::FullFormat::new(AnsiDecorator(Mutex::new(theirs.clone())))
            .build()
            .fuse(),
        o!(),
    );
    log_two_lines(&reference);
    let date = Regex::new(STDERR_DATE_ANYWHERE).unwrap();
    assert_eq!(
        date.replace_all(&text, "").lines().collect::<Vec<_>>(),
        date.replace_all(&theirs.text(), "")
            .lines()
            .collect::<Vec<_>>()
    );

    let (log, writer, plain, _) = stderr_logger(64, NEVER, false);
    log_two_lines(&log);
    writer.close();
    let escapes = Regex::new("\x1b\\[[0-9;]*m").unwrap();
    let date = Regex::new(&format!("(?m){}", STDERR_DATE)).unwrap();
    let uncoloured = escapes.replace_all(&text, "");
    assert_eq!(
        date.replace_all(&uncoloured, ""),
        date.replace_all(&plain.text(), "")
    );
}

/// slog-term's decorator for a terminal with the common ANSI escapes (what its `TermDecorator`
/// gets from terminfo there), writing into a captured stderr: the reference for coloured lines.
struct AnsiDecorator(Mutex<Captured>);

struct AnsiLine<'a> {
    out: &'a mut Captured,
    level: slog::Level,
}

impl slog_term::Decorator for AnsiDecorator {
    fn with_record<F>(&self, record: &Record<'_>, _: &OwnedKVList, f: F) -> std::io::Result<()>
    where
        F: FnOnce(&mut dyn slog_term::RecordDecorator) -> std::io::Result<()>,
    {
        let mut out = self.0.lock().unwrap();
        f(&mut AnsiLine {
            out: &mut out,
            level: record.level(),
        })
    }
}

impl std::io::Write for AnsiLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl slog_term::RecordDecorator for AnsiLine<'_> {
    fn reset(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"\x1b[0m")
    }
    fn start_level(&mut self) -> std::io::Result<()> {
        let color = slog_term::TermDecorator::level_to_color(self.level);
        write!(self.out, "\x1b[3{color}m")
    }
    fn start_key(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"\x1b[1m")
    }
    fn start_msg(&mut self) -> std::io::Result<()> {
        self.start_key()
    }
}
