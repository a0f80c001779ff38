//! How an error reaches the terminal: one line, each cause once.

/// The error and its causes joined by `": "`, leaving out a cause whose message the line
/// already holds (an error that prints its source, and also returns it as its source,
/// would otherwise say the same thing twice or three times).
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if message.is_empty() || line.contains(&message) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&message);
    }
    line
}

/// Whether the error is stdout closed by its reader (`sparsity-explorer lessons | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("schedule: {0}")]
    struct Wraps(#[from] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("final sparsity must be in [0, 1), found 1")]
    struct Inner;

    #[test]
    fn each_cause_is_said_once() {
        let e = anyhow::Error::from(Wraps(Inner)).context("invalid plan");
        assert_eq!(
            error_line(&e),
            "invalid plan: schedule: final sparsity must be in [0, 1), found 1"
        );
    }

    #[test]
    fn causes_that_add_something_stay() {
        let e = anyhow::anyhow!("permission denied").context("cannot write /x/m.safetensors");
        assert_eq!(
            error_line(&e),
            "cannot write /x/m.safetensors: permission denied"
        );
    }

    #[test]
    fn a_closed_pipe_is_told_apart() {
        let pipe = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&pipe.context("writing the list")));
        assert!(!is_broken_pipe(&anyhow::anyhow!("something else")));
    }
}
