//! Helpers shared by the benchmark binaries (`bench`, `bench_redis`): their
//! command-line flags and start-up checks, the statistics and the Markdown table they
//! print, and the report at the end of a run.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::netns;

/// The VRRP priority the benchmarks give host 1, the expected master (redha and
/// keepalived alike).
pub const HIGH: u8 = 150;

/// The VRRP priority the benchmarks give host 2, the expected backup.
pub const LOW: u8 = 100;

/// The command-line arguments of a benchmark, read as flags: `--name value` or
/// `--name=value`.
///
/// ```
/// use netns_tests::measure::Flags;
///
/// let mut flags = Flags::new(["--runs=3", "--advert-int", "2"].map(String::from));
/// assert_eq!(flags.next_flag().as_deref(), Some("--runs"));
/// assert_eq!(flags.runs(), Ok(3));
/// assert_eq!(flags.next_flag().as_deref(), Some("--advert-int"));
/// assert_eq!(flags.advert_int(), Ok(2));
/// assert_eq!(flags.next_flag(), None);
/// ```
pub struct Flags<I> {
    args: I,
    /// The value given with `=` to the flag last returned.
    inline: Option<String>,
}

impl Flags<std::iter::Skip<std::env::Args>> {
    /// The arguments of this process, without the program name.
    pub fn from_env() -> Self {
        Flags::new(std::env::args().skip(1))
    }
}

impl<I: Iterator<Item = String>> Flags<I> {
    /// Flags read from `args` (without the program name).
    pub fn new(args: impl IntoIterator<IntoIter = I>) -> Self {
        Flags {
            args: args.into_iter(),
            inline: None,
        }
    }

    /// The next flag: the next argument up to its first `=`, if any (what follows the
    /// `=` is the flag's value, for [`value`](Self::value)). `None` at the end.
    pub fn next_flag(&mut self) -> Option<String> {
        let arg = self.args.next()?;
        match arg.split_once('=') {
            Some((flag, value)) => {
                self.inline = Some(value.to_owned());
                Some(flag.to_owned())
            }
            None => {
                self.inline = None;
                Some(arg)
            }
        }
    }

    /// The value of the flag `name` just returned by [`next_flag`](Self::next_flag):
    /// what followed its `=`, or else the next argument; an error naming the flag
    /// when there is none.
    pub fn value(&mut self, name: &str) -> Result<String, String> {
        self.inline
            .take()
            .or_else(|| self.args.next())
            .ok_or_else(|| format!("{name} needs a value"))
    }

    /// The value of `--advert-int`: whole seconds from 1 to 255.
    pub fn advert_int(&mut self) -> Result<u64, String> {
        let v = self.value("--advert-int")?;
        v.parse()
            .ok()
            .filter(|n| (1..=255).contains(n))
            .ok_or_else(|| format!("--advert-int: `{v}` is not 1 to 255 seconds"))
    }

    /// The value of `--runs`: a positive number.
    pub fn runs(&mut self) -> Result<usize, String> {
        let v = self.value("--runs")?;
        v.parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("--runs: `{v}` is not a positive number"))
    }
}

/// Checks that `program` runs as root. If not, says so on stderr (root is needed for
/// `needs`) and returns the exit code to end with.
pub fn require_root(program: &str, needs: &str) -> Result<(), ExitCode> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    eprintln!("{program}: must run as root ({needs}): use sudo");
    Err(ExitCode::from(1))
}

/// The redha binary under test ([`redha_bin`](crate::redha_bin)). If there is none,
/// tells on stderr how to build it and returns the exit code to end with.
pub fn require_redha_bin(program: &str) -> Result<PathBuf, ExitCode> {
    std::panic::catch_unwind(crate::redha_bin).map_err(|_| {
        eprintln!(
            "{program}: build redha first: cargo build --release -p redha (or set REDHA_BIN)"
        );
        ExitCode::from(1)
    })
}

/// The first line of what `program args...` prints (stdout, then stderr), trimmed;
/// empty if it cannot be run. For version strings.
pub fn version(program: impl AsRef<OsStr>, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or_default().trim().to_owned()
        })
        .unwrap_or_default()
}

/// The median of `sorted` (sorted in increasing order; the mean of the middle two for
/// an even count).
///
/// # Panics
/// When `sorted` is empty.
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// "median (min–max)" of `vals` (in any order), each number written with `fmt`; just
/// the median for a single value.
///
/// # Panics
/// When `vals` is empty.
pub fn spread(vals: &[f64], fmt: impl Fn(f64) -> String) -> String {
    let mut v = vals.to_vec();
    v.sort_by(f64::total_cmp);
    let mut s = fmt(median(&v));
    if v.len() > 1 {
        let _ = write!(s, " ({}–{})", fmt(v[0]), fmt(v[v.len() - 1]));
    }
    s
}

/// A Markdown table, built row by row.
///
/// ```
/// use netns_tests::measure::Table;
///
/// let mut t = Table::new(["metric", "value"]);
/// t.row(["gap", "0.5 s"]);
/// assert_eq!(t.text(), "| metric | value |\n|---|---|\n| gap | 0.5 s |\n");
/// ```
pub struct Table {
    text: String,
}

impl Table {
    /// A table with these column headings.
    pub fn new<S: AsRef<str>>(headings: impl IntoIterator<Item = S>) -> Table {
        let mut t = Table {
            text: String::new(),
        };
        let columns = t.row(headings);
        t.text.push('|');
        for _ in 0..columns {
            t.text.push_str("---|");
        }
        t.text.push('\n');
        t
    }

    /// Appends a row of cells; returns how many there were.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) -> usize {
        let mut n = 0;
        self.text.push('|');
        for cell in cells {
            let _ = write!(self.text, " {} |", cell.as_ref());
            n += 1;
        }
        self.text.push('\n');
        n
    }

    /// The table so far, each row ending in a newline.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Prints `items` to stdout as a Markdown list headed `title:`, after an empty line;
/// nothing when there are none.
pub fn print_list(title: &str, items: &[String]) {
    if !items.is_empty() {
        println!("\n{title}:");
        for item in items {
            println!("- {item}");
        }
    }
}

/// The end of a benchmark run of `program`: warns on stderr about network namespaces
/// of this process left behind (the labs should have removed them), then says that
/// it is done after `elapsed` seconds.
pub fn finish(program: &str, elapsed: f64) {
    let prefix = format!("{}{}-", netns::PREFIX, std::process::id());
    let left: Vec<String> = netns::list()
        .into_iter()
        .filter(|ns| ns.starts_with(&prefix))
        .collect();
    if !left.is_empty() {
        eprintln!("{program}: warning: namespaces left behind: {left:?}");
    }
    eprintln!("{program}: done in {elapsed:.0} s");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags<std::vec::IntoIter<String>> {
        Flags::new(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_with_and_without_equals() {
        let mut f = flags(&["--runs", "2", "--advert-int=3", "--help=x", "--cap"]);
        assert_eq!(f.next_flag().as_deref(), Some("--runs"));
        assert_eq!(f.runs(), Ok(2));
        assert_eq!(f.next_flag().as_deref(), Some("--advert-int"));
        assert_eq!(f.advert_int(), Ok(3));
        assert_eq!(f.next_flag().as_deref(), Some("--help"));
        assert_eq!(f.next_flag().as_deref(), Some("--cap"));
        assert_eq!(f.value("--cap"), Err("--cap needs a value".into()));
        assert_eq!(f.next_flag(), None);
    }

    #[test]
    fn flag_values_checked() {
        let mut f = flags(&["0", "256", "x", "0"]);
        assert_eq!(
            f.advert_int(),
            Err("--advert-int: `0` is not 1 to 255 seconds".into())
        );
        assert_eq!(
            f.advert_int(),
            Err("--advert-int: `256` is not 1 to 255 seconds".into())
        );
        assert_eq!(f.runs(), Err("--runs: `x` is not a positive number".into()));
        assert_eq!(f.runs(), Err("--runs: `0` is not a positive number".into()));
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(median(&[1.0]), 1.0);
        assert_eq!(median(&[1.0, 2.0, 4.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), 3.0);
        assert_eq!(spread(&[2.0], |x| format!("{x:.1} s")), "2.0 s");
        assert_eq!(spread(&[3.0, 1.0, 2.0], |x| format!("{x:.0}")), "2 (1–3)");
    }

    #[test]
    fn table_rows() {
        let mut t = Table::new(["a", "b", "c"]);
        t.row(["", "x", "y"]);
        assert_eq!(t.text(), "| a | b | c |\n|---|---|---|\n|  | x | y |\n");
    }
}
