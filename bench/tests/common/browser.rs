//! The browser tests' runner: a script in `tests/browser/` drives Debian's Chromium through
//! playwright-core and prints one JSON report.

use super::Server;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser scripts' own deadlines are shorter; this one only catches a hung Node.
const BROWSER_DEADLINE: Duration = Duration::from_secs(150);

/// Where screenshots go: `target/browser/{test}/`.
pub fn screenshot_dir(test: &str) -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target"));
    target.join("browser").join(test)
}

/// Runs `tests/browser/{script}` against the pages at `base` with `args` (screenshots to
/// `target/browser/{test}/`); returns its JSON report, panicking with it when a check failed.
pub fn run_script(
    server: &Server,
    script: &str,
    base: &str,
    test: &str,
    args: &[&str],
) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let out = screenshot_dir(test);
    let mut child = Command::new("node")
        .arg(&script)
        .args(["--base", base, "--out"])
        .arg(&out)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (scripts/setup.sh installs it)");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser script ran over {BROWSER_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let report: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no report from the browser script:\n{stdout}\n{stderr}"));
    if let Some(shots) = report["screenshots"].as_array() {
        for shot in shots {
            println!("screenshot: {}", shot.as_str().unwrap_or_default());
        }
    }
    assert!(
        status.success() && report["ok"] == true,
        "browser checks failed: {}\nstderr: {stderr}\nserver log tail (INFO and above): {}",
        report,
        tail(&server.log(), 40)
    );
    report
}

/// The last `lines` lines of the server's log that are not DEBUG (the DTLS handshakes' DEBUG
/// lines would crowd out what the server says about streams).
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.contains(" DEBUG ")).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
