//! The lock within one process: `flock` locks of two open file descriptions conflict even
//! there, so a second `take` stands for a second host. The real binaries, and the handover
//! between them, are `host/tests/it/sqlite_lock.rs`'s.

use super::*;

fn take(database: &Path) -> Result<(ServingLock, Taken), LockError> {
    Ok(ServingLock::take(database, None)?.expect("a file, not memory"))
}

#[test]
fn a_second_lock_on_the_file_is_refused_with_the_holder_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("game.db");
    let (first, taken) = take(&database).unwrap();
    assert_eq!(taken, Taken::Locked);
    assert_eq!(
        first.path(),
        dir.path().canonicalize().unwrap().join("game.db.lock")
    );
    let refused = take(&database).unwrap_err().to_string();
    let pid = std::process::id();
    assert!(
        refused.starts_with(&format!(
            "another game-host (pid {pid}) serves sqlite://{}",
            database.display()
        )),
        "{refused}"
    );
    assert!(refused.contains("--database-url"), "{refused}");
    assert!(refused.contains("PostgreSQL or MariaDB"), "{refused}");
    // The refused opener left the holder's pid in place.
    let written = std::fs::read_to_string(first.path()).unwrap();
    assert_eq!(written, format!("{pid}\n"));
}

#[test]
fn the_lock_is_free_again_once_every_copy_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("game.db");
    let (first, _) = take(&database).unwrap();
    let kept = first.try_clone().unwrap();
    drop(first);
    assert!(take(&database).is_err(), "a copy still holds it");
    drop(kept);
    take(&database).expect("free once the last copy is gone");
}

#[test]
fn a_handed_over_lock_of_the_same_file_is_adopted_while_its_giver_still_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("game.db");
    let (predecessor, _) = take(&database).unwrap();
    let handed = predecessor.for_successor().unwrap();
    let (successor, taken) = ServingLock::take(&database, Some(handed)).unwrap().unwrap();
    assert_eq!(taken, Taken::Inherited);
    // The predecessor exits; the successor keeps the lock.
    drop(predecessor);
    assert!(take(&database).is_err());
    drop(successor);
    take(&database).unwrap();
}

#[test]
fn a_handed_over_lock_of_another_file_is_not_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let (other, _) = take(&dir.path().join("old.db")).unwrap();
    let database = dir.path().join("game.db");
    let (lock, taken) = ServingLock::take(&database, Some(other.for_successor().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(taken, Taken::InheritedOtherFile);
    assert!(take(&database).is_err(), "this database is locked itself");
    drop(lock);
    take(&database).unwrap();
}

#[test]
fn two_spellings_of_one_database_meet_on_one_lock() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("data"), dir.path().join("link")).unwrap();
    let (_held, _) = take(&dir.path().join("data/game.db")).unwrap();
    assert!(take(&dir.path().join("link/game.db")).is_err());
    assert!(take(&dir.path().join("data/../data/game.db")).is_err());
}

#[test]
fn a_database_in_memory_takes_no_lock() {
    assert!(ServingLock::take(Path::new(":memory:"), None)
        .unwrap()
        .is_none());
}
