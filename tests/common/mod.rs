//! What the tests that need a served device share: a `serve` process of the real binary.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A `serve` process on a free port of 127.0.0.1, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// The first line it printed: `serving <backend> (<device>) on ws://...`.
    pub banner: String,
    log: PathBuf,
}

impl Server {
    /// A flex server, with `token` or `--insecure` without one.
    pub fn start(token: Option<&str>) -> Self {
        let server = Self::start_on("flex", token).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            server
                .banner
                .starts_with("serving flex (CPU (flex)) on ws://"),
            "{}",
            server.banner
        );
        server
    }

    /// A server of `backend` (`flex`, `wgpu`), or what `serve` said when it did not start.
    pub fn start_on(backend: &str, token: Option<&str>) -> Result<Self, String> {
        let mut args = vec!["--backend", backend];
        match token {
            Some(t) => args.extend(["--token", t]),
            None => args.push("--insecure"),
        };
        Self::start_with(&args)
    }

    /// `serve --port 0` with `args`, or what it said when it did not start.
    pub fn start_with(args: &[&str]) -> Result<Self, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sparsity-explorer"));
        cmd.args(["serve", "--port", "0"]).args(args);
        // its log goes to a file: a pipe nobody reads would stop it once full
        static SERVERS: AtomicUsize = AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "sparsity-explorer-serve-{}-{}.log",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("a log file"))
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let _ = child.wait();
            let why = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            return Err(format!("serve {} did not start: {why}", args.join(" ")));
        }
        // "serving flex (CPU (flex)) on ws://127.0.0.1:PORT"
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.split_whitespace().next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Ok(Server {
            child,
            url: format!("ws://127.0.0.1:{port}"),
            banner: line.trim().to_string(),
            log,
        })
    }
}

#[allow(
    dead_code,
    reason = "each test binary that includes this module uses a part of it"
)]
impl Server {
    /// What it has written to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `HOST:PORT` of its URL.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("ws://")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
