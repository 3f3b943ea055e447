//! The checks of a hook's command: splitting it as keepalived does, and the security
//! check of its program (absolute, executable, and changeable by root alone), at load
//! time and again before every run.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A hook refused at load time (or before a run).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct HookError {
    /// The configuration key: `notify_master`, ..., `notify_timeout`.
    pub key: &'static str,
    /// The command as configured.
    pub command: String,
    /// Why it is refused.
    pub refusal: Refusal,
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.command.is_empty() {
            write!(f, "{}: {}", self.key, self.refusal)
        } else {
            write!(
                f,
                "{} = {:?}: refused: {}",
                self.key, self.command, self.refusal
            )
        }
    }
}

/// Why a hook is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `notify_timeout = "0s"`.
    ZeroTimeout,
    /// The command has no word.
    Empty,
    /// A quote is not closed, or the command ends with a lone backslash.
    Unterminated,
    /// The program is not an absolute path.
    Relative(PathBuf),
    /// The program (or a directory above it) does not exist.
    Missing(PathBuf),
    /// It could not be examined.
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The error.
        error: String,
    },
    /// The program is not a regular file.
    NotAFile(PathBuf),
    /// The program has no execute bit, or this user may not execute it.
    NotExecutable {
        /// The program.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The program or a directory above it is owned by a non-root user.
    NotOwnedByRoot {
        /// The file or directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// A directory, not the program.
        dir: bool,
    },
    /// The program or a directory above it is writable by group or others.
    Writable {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// "group", "others" or "group and others".
        by: &'static str,
        /// A directory, not the program.
        dir: bool,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WHY: &str = "so a non-root user could change the script";
        let what = |dir: bool| if dir { "directory " } else { "" };
        match self {
            Refusal::ZeroTimeout => f.write_str("must be more than 0s"),
            Refusal::Empty => f.write_str("the command is empty"),
            Refusal::Unterminated => {
                f.write_str("a quote is not closed (or the command ends with a backslash)")
            }
            Refusal::Relative(p) => write!(
                f,
                "the program {} is not an absolute path; give its full path",
                p.display()
            ),
            Refusal::Missing(p) => write!(f, "{} does not exist", p.display()),
            Refusal::Unreadable { path, error } => {
                write!(f, "cannot examine {}: {error}", path.display())
            }
            Refusal::NotAFile(p) => write!(f, "{} is not a regular file", p.display()),
            Refusal::NotExecutable { path, mode } => write!(
                f,
                "{} is not executable by this user (uid {}, mode {:04o})",
                path.display(),
                geteuid(),
                mode & 0o7777
            ),
            Refusal::NotOwnedByRoot { path, uid, dir } => write!(
                f,
                "{}{} is owned by uid {uid}, not root, {WHY}",
                what(*dir),
                path.display()
            ),
            Refusal::Writable {
                path,
                mode,
                by,
                dir,
            } => write!(
                f,
                "{}{} is writable by {by} (mode {:04o}), {WHY}",
                what(*dir),
                path.display(),
                mode & 0o7777
            ),
        }
    }
}

/// Splits a command like keepalived: white space separates words; `"..."` groups
/// (inside, `\"` and `\\` are escapes, other backslashes stay); `'...'` groups
/// literally; outside quotes a backslash takes the next character as it is.
pub fn split_command(command: &str) -> Result<Vec<String>, Refusal> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(Refusal::Unterminated),
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&e @ ('"' | '\\')) => {
                                word.push(e);
                                chars.next();
                            }
                            _ => word.push('\\'),
                        },
                        Some(c) => word.push(c),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(Refusal::Unterminated),
                        Some('\'') => break,
                        Some(c) => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err(Refusal::Unterminated),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() || words[0].is_empty() {
        return Err(Refusal::Empty);
    }
    Ok(words)
}

/// Splits `command` and checks its program; returns the words.
pub fn check_command(key: &'static str, command: &str) -> Result<Vec<String>, HookError> {
    let fail = |refusal| HookError {
        key,
        command: command.to_string(),
        refusal,
    };
    let argv = split_command(command).map_err(fail)?;
    check_program(Path::new(&argv[0])).map_err(fail)?;
    Ok(argv)
}

/// The security check of one program: see the module documentation.
pub fn check_program(program: &Path) -> Result<(), Refusal> {
    if !program.is_absolute() {
        return Err(Refusal::Relative(program.to_path_buf()));
    }
    let examine = |path: &Path| {
        std::fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Refusal::Missing(path.to_path_buf()),
            _ => Refusal::Unreadable {
                path: path.to_path_buf(),
                error: e.to_string(),
            },
        })
    };
    // The directories above the path as written (a directory holding a symbolic link
    // decides what the link may be replaced with), from the root down ...
    let mut dirs: Vec<&Path> = program.ancestors().skip(1).collect();
    dirs.reverse();
    for dir in dirs {
        secure(dir, &examine(dir)?)?;
    }
    // ... then the resolved path, from the root down to the program itself.
    let real = std::fs::canonicalize(program).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Refusal::Missing(program.to_path_buf()),
        _ => Refusal::Unreadable {
            path: program.to_path_buf(),
            error: e.to_string(),
        },
    })?;
    let mut chain: Vec<&Path> = real.ancestors().collect();
    chain.reverse();
    for path in chain {
        secure(path, &examine(path)?)?;
    }
    let meta = examine(&real)?;
    if !meta.is_file() {
        return Err(Refusal::NotAFile(program.to_path_buf()));
    }
    if meta.mode() & 0o111 == 0 || !executable(&real) {
        return Err(Refusal::NotExecutable {
            path: program.to_path_buf(),
            mode: meta.mode(),
        });
    }
    Ok(())
}

/// Owned by root and not writable by group or others, unless it is a directory with
/// the sticky bit (only a file's owner may remove or rename it there).
fn secure(path: &Path, meta: &std::fs::Metadata) -> Result<(), Refusal> {
    let dir = meta.is_dir();
    if meta.uid() != 0 {
        return Err(Refusal::NotOwnedByRoot {
            path: path.to_path_buf(),
            uid: meta.uid(),
            dir,
        });
    }
    let mode = meta.mode();
    let sticky_dir = dir && mode & 0o1000 != 0;
    let by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        _ if sticky_dir => None,
        (true, true) => Some("group and others"),
        (true, false) => Some("group"),
        (false, true) => Some("others"),
        (false, false) => None,
    };
    match by {
        Some(by) => Err(Refusal::Writable {
            path: path.to_path_buf(),
            mode,
            by,
            dir,
        }),
        None => Ok(()),
    }
}

pub(super) fn geteuid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// May this process execute `path` (access(2) with X_OK)?
fn executable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::hooks::HookConfig;
    use crate::hooks::test_support::{TempDir, chmod, config, q, root};

    #[test]
    fn splits_like_keepalived() {
        let s = |c: &str| split_command(c).unwrap();
        assert_eq!(s("/bin/x"), ["/bin/x"]);
        assert_eq!(s("  /bin/x  a   b "), ["/bin/x", "a", "b"]);
        assert_eq!(
            s(r#"/bin/x "two words" 'single "q"' plain"#),
            ["/bin/x", "two words", "single \"q\"", "plain"]
        );
        assert_eq!(
            s(r#"/bin/x "a \"quoted\" \\ b""#),
            ["/bin/x", r#"a "quoted" \ b"#]
        );
        assert_eq!(
            s(r#"/bin/x a\ b pre"fix"post """#),
            ["/bin/x", "a b", "prefixpost", ""]
        );
        assert_eq!(s(r#""/opt/my dir/hook" x"#), ["/opt/my dir/hook", "x"]);
        assert_eq!(split_command(""), Err(Refusal::Empty));
        assert_eq!(split_command("   "), Err(Refusal::Empty));
        assert_eq!(split_command(r#"/bin/x "open"#), Err(Refusal::Unterminated));
        assert_eq!(split_command("/bin/x 'open"), Err(Refusal::Unterminated));
        assert_eq!(split_command("/bin/x \\"), Err(Refusal::Unterminated));
    }

    /// The refusal of `command` as `notify_backup`.
    fn refusal(command: &str) -> Refusal {
        let c = HookConfig {
            notify_backup: Some(command.to_string()),
            ..config()
        };
        let e = c.check().expect_err(command);
        assert_eq!(e.key, "notify_backup");
        assert!(e.to_string().starts_with("notify_backup = "), "{e}");
        e.refusal
    }

    #[test]
    fn security_accepts_a_root_script_in_a_root_directory() {
        if !root("security_accepts_a_root_script_in_a_root_directory") {
            return;
        }
        let dir = TempDir::new();
        let script = dir.script("ok.sh", "exit 0");
        let c = HookConfig {
            notify_master: Some(format!("{} \"with args\"", q(&script))),
            notify: Some(q(&script)),
            ..config()
        };
        c.check().unwrap();
        // A root-owned sticky directory writable by all is accepted, as keepalived does.
        let sticky = dir.path("sticky");
        std::fs::create_dir(&sticky).unwrap();
        chmod(&sticky, 0o1777);
        let inner = sticky.join("hook.sh");
        std::fs::write(&inner, "#!/bin/sh\n").unwrap();
        chmod(&inner, 0o755);
        check_program(&inner).unwrap();
        // /bin/true through the /bin symbolic link (on merged-/usr systems).
        check_program(Path::new("/bin/true")).unwrap();
    }

    #[test]
    fn security_refuses_a_world_writable_directory() {
        if !root("security_refuses_a_world_writable_directory") {
            return;
        }
        let dir = TempDir::new();
        let script = dir.script("hook.sh", "exit 0");
        chmod(&dir.0, 0o777);
        let r = refusal(&q(&script));
        assert_eq!(
            r,
            Refusal::Writable {
                path: dir.0.clone(),
                mode: 0o40777,
                by: "group and others",
                dir: true
            }
        );
        let c = HookConfig {
            notify_backup: Some(q(&script)),
            ..config()
        };
        let message = c.check().unwrap_err().to_string();
        assert!(
            message.contains(&format!(
                "directory {} is writable by group and others (mode 0777), so a non-root user could change the script",
                dir.0.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn security_refuses_a_group_writable_script() {
        if !root("security_refuses_a_group_writable_script") {
            return;
        }
        let dir = TempDir::new();
        let script = dir.script("hook.sh", "exit 0");
        chmod(&script, 0o775);
        assert!(matches!(
            refusal(&q(&script)),
            Refusal::Writable {
                by: "group",
                dir: false,
                ..
            }
        ));
        chmod(&script, 0o757);
        assert!(matches!(
            refusal(&q(&script)),
            Refusal::Writable {
                by: "others",
                dir: false,
                ..
            }
        ));
    }

    #[test]
    fn security_refuses_a_script_owned_by_a_non_root_user() {
        if !root("security_refuses_a_script_owned_by_a_non_root_user") {
            return;
        }
        let dir = TempDir::new();
        let script = dir.script("hook.sh", "exit 0");
        std::os::unix::fs::chown(&script, Some(65534), Some(65534)).unwrap();
        assert_eq!(
            refusal(&q(&script)),
            Refusal::NotOwnedByRoot {
                path: script.clone(),
                uid: 65534,
                dir: false
            }
        );
        // A directory owned by a non-root user.
        let sub = dir.path("sub");
        std::fs::create_dir(&sub).unwrap();
        chmod(&sub, 0o755);
        let inner = sub.join("hook.sh");
        std::fs::write(&inner, "#!/bin/sh\n").unwrap();
        chmod(&inner, 0o755);
        std::os::unix::fs::chown(&sub, Some(65534), None).unwrap();
        let message = HookConfig {
            notify_backup: Some(q(&inner)),
            ..config()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(
            message.contains(&format!(
                "directory {} is owned by uid 65534, not root",
                sub.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn security_refuses_a_relative_path() {
        assert_eq!(refusal("hook.sh arg"), Refusal::Relative("hook.sh".into()));
        assert_eq!(refusal("./hook.sh"), Refusal::Relative("./hook.sh".into()));
        let message = HookConfig {
            notify_backup: Some("bin/hook.sh".into()),
            ..config()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert_eq!(
            message,
            "notify_backup = \"bin/hook.sh\": refused: the program bin/hook.sh is not an absolute path; give its full path"
        );
    }

    #[test]
    fn security_refuses_a_missing_or_non_executable_file() {
        let dir = TempDir::new();
        let missing = dir.path("missing.sh");
        assert_eq!(refusal(&q(&missing)), Refusal::Missing(missing.clone()));
        assert_eq!(
            refusal("/nonexistent-dir/hook.sh"),
            Refusal::Missing("/nonexistent-dir".into())
        );
        if !root("security_refuses_a_missing_or_non_executable_file") {
            return;
        }
        let plain = dir.path("plain.sh");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        chmod(&plain, 0o644);
        assert!(matches!(refusal(&q(&plain)), Refusal::NotExecutable { .. }));
        assert_eq!(refusal(&q(&dir.0)), Refusal::NotAFile(dir.0.clone()));
        assert_eq!(refusal("\"\" x"), Refusal::Empty);
    }

    #[test]
    fn security_follows_symbolic_links() {
        if !root("security_follows_symbolic_links") {
            return;
        }
        let dir = TempDir::new();
        let open = dir.path("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let target = open.join("hook.sh");
        std::fs::write(&target, "#!/bin/sh\n").unwrap();
        chmod(&target, 0o755);
        let link = dir.path("link.sh");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            refusal(&q(&link)),
            Refusal::Writable { dir: true, path, .. } if path == open
        ));
    }
}
