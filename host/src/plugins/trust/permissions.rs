//! The permission half of trust: could anyone but root, the host's user and the host's group
//! have changed what a path leads to?
//!
//! [`check_file`] walks the path from `/` one name at a time with `lstat`, following symbolic
//! links the way the kernel does (a link's target is walked too, from `/` or from the link's
//! directory), and judges every directory it passes through and the file it ends on:
//!
//! - each is owned by root or by the host's user, or belongs to the host's group (a member of
//!   the group put it there; a user can only give a file a group they are in);
//! - none is writable by every user, nor by a group other than the host's;
//! - except that a directory *above* the one that holds the library may be writable by all if
//!   its sticky bit is set (`/tmp`): there nobody can rename or delete what others own, and
//!   what lies below is owned as above.
//!
//! The walk ends on the file's (device, inode), which the caller compares with the file it
//! opened and read, so what was judged is what was read.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Who the host trusts besides root: its effective user and its effective group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// What is wrong with one path on the way to a library, and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flaw {
    pub path: PathBuf,
    pub problem: Problem,
    /// The host's user and group, for the fix.
    pub ids: Ids,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Mode `o+w` (a directory without the sticky bit, or the one holding the library).
    WorldWritable { directory: bool, sticky: bool },
    /// Mode `g+w` for a group that is not the host's.
    GroupWritable { gid: u32 },
    /// Owned by a user who is not root nor the host's, in a group that is not the host's.
    ForeignOwner { uid: u32, gid: u32 },
    /// The path ends on something that is not a regular file (or a directory, for a folder).
    WrongKind { wanted: &'static str },
    /// More symbolic links than the kernel follows (40).
    TooManyLinks,
    /// It cannot be looked at.
    Unreadable(String),
}

/// As many links as Linux follows in one path.
const MAX_LINKS: u32 = 40;

impl Ids {
    /// This process's effective user and group (`/proc/self/status`: no `unsafe` needed).
    pub fn current() -> std::io::Result<Ids> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        // "Uid:\t<real>\t<effective>\t<saved>\t<filesystem>"
        let effective = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|ids| ids.split_whitespace().nth(1))
                .and_then(|id| id.parse().ok())
        };
        match (effective("Uid:"), effective("Gid:")) {
            (Some(uid), Some(gid)) => Ok(Ids { uid, gid }),
            _ => Err(std::io::Error::other("no Uid: or Gid: line")),
        }
    }

    fn trusts_owner(self, meta: &Metadata) -> bool {
        meta.uid() == 0 || meta.uid() == self.uid || meta.gid() == self.gid
    }
}

/// Judges `file` and every directory on its way; returns the metadata of the file it leads to.
pub fn check_file(file: &Path, ids: Ids) -> Result<Metadata, Flaw> {
    walk(file, ids, true)
}

/// Judges the directory `dir` as the holder of files (no sticky exception for it) and every
/// directory above it.
pub fn check_dir(dir: &Path, ids: Ids) -> Result<Metadata, Flaw> {
    walk(dir, ids, false)
}

fn walk(path: &Path, ids: Ids, to_file: bool) -> Result<Metadata, Flaw> {
    let flaw = |path: &Path, problem| Flaw {
        path: path.to_owned(),
        problem,
        ids,
    };
    let absolute =
        std::path::absolute(path).map_err(|e| flaw(path, Problem::Unreadable(e.to_string())))?;
    let mut pending = names(&absolute);
    let mut at = PathBuf::from("/");
    judge(&at, &lstat(&at, ids)?, ids, Role::Above)?;
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            at.pop();
            continue;
        }
        let last = pending.is_empty();
        if last && to_file {
            judge(&at, &lstat(&at, ids)?, ids, Role::Holder)?;
        }
        let next = at.join(&name);
        let meta = lstat(&next, ids)?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(flaw(&next, Problem::TooManyLinks));
            }
            let target = std::fs::read_link(&next)
                .map_err(|e| flaw(&next, Problem::Unreadable(e.to_string())))?;
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            for component in names(&target).into_iter().rev() {
                pending.push_front(component);
            }
            continue;
        }
        let role = match (last, to_file) {
            (true, true) if !meta.is_file() => {
                return Err(flaw(&next, Problem::WrongKind { wanted: "file" }))
            }
            (true, true) => Role::File,
            (true, false) => Role::Holder,
            (false, _) => Role::Above,
        };
        if role != Role::File && !meta.is_dir() {
            return Err(flaw(
                &next,
                Problem::WrongKind {
                    wanted: "directory",
                },
            ));
        }
        judge(&next, &meta, ids, role)?;
        if role == Role::File || last {
            return Ok(meta);
        }
        at = next;
    }
    // The path ended on a directory through `..`, or is `/`.
    match to_file {
        true => Err(flaw(&at, Problem::WrongKind { wanted: "file" })),
        false => {
            let meta = lstat(&at, ids)?;
            judge(&at, &meta, ids, Role::Holder)?;
            Ok(meta)
        }
    }
}

/// Where an entry is on the way to the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A directory above the one holding the library: its sticky bit counts.
    Above,
    /// The directory holding the library (or the directory checked itself).
    Holder,
    /// The library.
    File,
}

fn judge(path: &Path, meta: &Metadata, ids: Ids, role: Role) -> Result<(), Flaw> {
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0;
    let shared_ok = role == Role::Above && sticky;
    let problem = if mode & 0o002 != 0 && !shared_ok {
        Some(Problem::WorldWritable {
            directory: meta.is_dir(),
            sticky,
        })
    } else if mode & 0o020 != 0 && meta.gid() != ids.gid && !shared_ok {
        Some(Problem::GroupWritable { gid: meta.gid() })
    } else if !ids.trusts_owner(meta) {
        Some(Problem::ForeignOwner {
            uid: meta.uid(),
            gid: meta.gid(),
        })
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Flaw {
            path: path.to_owned(),
            problem,
            ids,
        }),
        None => Ok(()),
    }
}

fn lstat(path: &Path, ids: Ids) -> Result<Metadata, Flaw> {
    std::fs::symlink_metadata(path).map_err(|e| Flaw {
        path: path.to_owned(),
        problem: Problem::Unreadable(e.to_string()),
        ids,
    })
}

/// The names along `path`, `..` kept (it is resolved against the walk's real position, after
/// any link), `.` and the root dropped.
fn names(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

impl std::fmt::Display for Flaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = shell_word(&self.path);
        let user = user_name(self.ids.uid);
        let group = group_name(self.ids.gid);
        let trusted = match self.ids.uid {
            0 => "root".to_owned(),
            _ => format!("{user} or root"),
        };
        match &self.problem {
            Problem::WorldWritable {
                directory: true,
                sticky: true,
            } => write!(f, "{path} is a shared directory that every user can write (like /tmp), so anyone could put a library there: keep module libraries in a directory only {trusted} can write"),
            Problem::WorldWritable { .. } => write!(f, "{path} is writable by every user, so anyone could put their own code into this host: run `chmod o-w {path}`"),
            Problem::GroupWritable { gid } => write!(f, "{path} is writable by group {}, which this host does not run as, so its members could put their own code into this host: run `chmod g-w {path}` (or `chgrp {group} {path}` if every member of that group may ship modules)", describe_group(*gid)),
            Problem::ForeignOwner { uid, gid } => write!(f, "{path} is owned by user {} and group {}, neither root nor this host's ({user}, group {group}), so that user could put their own code into this host: run `chown {user}:{group} {path}` (or keep module libraries where only {trusted} can write)", describe_user(*uid), describe_group(*gid)),
            Problem::WrongKind { wanted } => write!(f, "{path} is not a regular {wanted}: ship module libraries as plain files"),
            Problem::TooManyLinks => write!(f, "{path}: too many levels of symbolic links"),
            Problem::Unreadable(e) => write!(f, "cannot look at {path}: {e}"),
        }
    }
}

/// `path` as one shell word, quoted only if it needs to be.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&b));
    if plain && !text.is_empty() {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn describe_user(uid: u32) -> String {
    match lookup("/etc/passwd", uid) {
        Some(name) => format!("{name} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

fn describe_group(gid: u32) -> String {
    match lookup("/etc/group", gid) {
        Some(name) => format!("{name} (gid {gid})"),
        None => format!("gid {gid}"),
    }
}

/// A name for a `chown`: the user's name, or its number.
pub fn user_name(uid: u32) -> String {
    lookup("/etc/passwd", uid).unwrap_or_else(|| uid.to_string())
}

pub fn group_name(gid: u32) -> String {
    lookup("/etc/group", gid).unwrap_or_else(|| gid.to_string())
}

/// The name of `id` in a `name:x:id:...` database; only for messages, so local files are
/// enough (a name from NSS elsewhere shows as its number).
fn lookup(database: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(database).ok()?;
    let id = id.to_string();
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == id).then(|| name.to_owned())
    })
}
