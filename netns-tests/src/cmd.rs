//! Running `ip` and other helper commands.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

/// Renders a command line for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion with stdin closed; panics only if it cannot be started.
pub(crate) fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("netns-tests: cannot run `{}`: {e}", describe(cmd)),
    }
}

/// Formats a failed command's status and output for an error message.
pub(crate) fn failure(cmd: &Command, out: &Output) -> String {
    format!(
        "`{}` failed ({}):\nstdout: {}\nstderr: {}",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// Runs `ip ARGS...`, returning stdout on success and a description on failure.
pub(crate) fn ip<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Result<String, String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    let out = output(&mut cmd);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failure(&cmd, &out))
    }
}

/// Runs `ip [-n NS] -batch -` with `script` on stdin.
pub(crate) fn ip_batch(ns: Option<&str>, script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("netns-tests: cannot run `{}`: {e}", describe(&cmd)));
    let write_result = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes());
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("netns-tests: waiting for `{}`: {e}", describe(&cmd)));
    if out.status.success() && write_result.is_ok() {
        Ok(())
    } else {
        Err(format!("{}\nscript:\n{script}", failure(&cmd, &out)))
    }
}
