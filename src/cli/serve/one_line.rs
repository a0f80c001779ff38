//! A server's problems, one line each on stderr: burn's warnings about a rejected session, and
//! any handler that panics (burn's transport unwraps what a stranger sends), without a
//! backtrace and without stopping the server.

use log::{Level, LevelFilter, Log, Metadata, Record};

/// How burn words a client that went away without a closing handshake, which is how its
/// own client ends a session: an end, not a problem.
const LEFT_WITHOUT_CLOSING: &str = "Connection reset without closing handshake";

/// burn's warnings and errors, each as one line.
struct OneLineLog;

impl Log for OneLineLog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Warn
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let message = record.args().to_string();
            if message.contains(LEFT_WITHOUT_CLOSING) {
                return;
            }
            eprintln!("serve: {}", message.lines().next().unwrap_or_default());
        }
    }

    fn flush(&self) {}
}

static LOG: OneLineLog = OneLineLog;

/// From here on the process's warnings and panics are one line each. A panic in a thread
/// other than the main one ends only that thread, which for burn's server is one connection.
pub fn install() {
    if log::set_logger(&LOG).is_ok() {
        log::set_max_level(LevelFilter::Warn);
    }
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        let at = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        let first = message.lines().next().unwrap_or_default();
        let what = match std::thread::current().name() {
            Some("main") => "stopped",
            _ => "a connection failed",
        };
        eprintln!("serve: {what}: {first}{at}");
    }));
}
