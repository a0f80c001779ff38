//! What the tests that need a served device share: a `serve` process of the real binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A `serve` process on a free port of 127.0.0.1, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(token: Option<&str>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sparsity-explorer"));
        cmd.args(["serve", "--port", "0", "--backend", "flex"]);
        match token {
            Some(t) => cmd.args(["--token", t]),
            None => cmd.arg("--insecure"),
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "serving flex (CPU (flex)) on ws://0.0.0.0:PORT"
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.split_whitespace().next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        assert!(
            line.starts_with("serving flex (CPU (flex)) on ws://"),
            "{line}"
        );
        Server {
            child,
            url: format!("ws://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
