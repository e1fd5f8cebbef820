//! Helpers shared by the command-line tests (`tests/cli_*.rs`, `tests/replay_*.rs`): run the
//! built `bpfswitch` binary, scratch directories, tcpdump.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where `examples/` and `extensions/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `bpfswitch` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bpfswitch"))
}

/// Runs `bpfswitch ARGS` in `cwd` (the repository root when `None`).
pub fn run_in(cwd: Option<&Path>, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd.map(Path::to_path_buf).unwrap_or_else(root))
        .output()
        .expect("run bpfswitch")
}

/// Runs `bpfswitch ARGS` from the repository root.
pub fn run(args: &[&str]) -> Output {
    run_in(None, args)
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "bpfswitch failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bpfswitch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Whether tcpdump is installed (prints a loud SKIPPED notice when it is not).
pub fn have_tcpdump() -> bool {
    if Command::new("tcpdump").arg("--version").output().is_ok() {
        return true;
    }
    eprintln!(
        "\n*** SKIPPED: `tcpdump` is not installed (apt-get install tcpdump); the written \
         captures were NOT opened with tcpdump. ***\n"
    );
    false
}

/// The lines `tcpdump -n -e -r FILE` prints (asserting it succeeds).
pub fn tcpdump_lines(file: &Path) -> Vec<String> {
    let o = Command::new("tcpdump")
        .args(["-n", "-e", "-r"])
        .arg(file)
        .output()
        .expect("run tcpdump");
    assert!(
        o.status.success(),
        "tcpdump -r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `port-*.pcap` files in `dir`, sorted by name.
pub fn outputs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("port-") && n.ends_with(".pcap"))
        .collect();
    v.sort();
    v
}

/// Asserts that `dir` holds exactly the captures of `expected` (a directory), byte for byte.
pub fn assert_same_outputs(dir: &Path, expected: &Path, what: &str) {
    let want = outputs(expected);
    assert!(
        !want.is_empty(),
        "no expected captures in {}",
        expected.display()
    );
    assert_eq!(outputs(dir), want, "{what}: which ports transmitted");
    for f in &want {
        let got = std::fs::read(dir.join(f)).unwrap();
        let exp = std::fs::read(expected.join(f)).unwrap();
        assert!(
            got == exp,
            "{what}: {f} differs from {} ({} bytes vs {} expected)",
            expected.join(f).display(),
            got.len(),
            exp.len()
        );
    }
}

/// Number of records in a legacy pcap file.
pub fn pcap_records(file: &Path) -> usize {
    let b = std::fs::read(file).unwrap();
    let mut at = 24;
    let mut n = 0;
    while at + 16 <= b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
        n += 1;
    }
    assert_eq!(
        at,
        b.len(),
        "{} is not a whole number of records",
        file.display()
    );
    n
}
