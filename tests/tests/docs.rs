//! The README's commands and the scripts' messages work from a root shell without
//! sudo (a container, a fresh Debian): nothing tells the reader to type `sudo`
//! without saying that root needs none.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The lines of the README's shell code blocks.
fn shell_lines(markdown: &str) -> Vec<(usize, &str)> {
    let mut in_shell = false;
    let mut lines = Vec::new();
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            in_shell = !in_shell && matches!(lang.trim(), "sh" | "bash" | "shell" | "console");
            continue;
        }
        if in_shell {
            lines.push((n + 1, trimmed));
        }
    }
    lines
}

/// The inline code spans (`like this`) of a line.
fn inline_code(line: &str) -> impl Iterator<Item = &str> {
    line.split('`').skip(1).step_by(2)
}

fn runs_sudo(command: &str) -> bool {
    command
        .split(['&', ';', '|'])
        .any(|part| part.split_whitespace().next() == Some("sudo"))
}

#[test]
fn readme_commands_work_from_a_root_shell_without_sudo() {
    let readme = read("README.md");
    let mut bad = Vec::new();
    for (n, line) in shell_lines(&readme) {
        // A comment may mention sudo ("# as root, or with sudo"); the command may not.
        let command = line.split('#').next().unwrap_or_default();
        if runs_sudo(command) {
            bad.push(format!("README.md:{n}: {line}"));
        }
    }
    for (n, line) in readme.lines().enumerate() {
        for code in inline_code(line) {
            if runs_sudo(code) {
                bad.push(format!("README.md:{}: `{code}`", n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "commands that fail on a root shell without sudo:\n{}",
        bad.join("\n")
    );
    // Where root is needed, the README says so in the words a root shell understands.
    assert!(readme.contains("as root, or with sudo"), "README.md");
}

#[test]
fn the_scripts_ask_for_root_not_for_sudo() {
    let setup = read("scripts/setup.sh");
    for (n, line) in setup.lines().enumerate() {
        if line.contains("sudo") {
            assert!(
                line.contains("as root, or with sudo"),
                "scripts/setup.sh:{}: `{}` asks for sudo; a root shell may have none",
                n + 1,
                line.trim()
            );
        }
    }
    assert!(setup.contains("as root, or with sudo"), "scripts/setup.sh");
}
