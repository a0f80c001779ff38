//! The server's front door: the one socket strangers reach, in front of burn's remote server.
//!
//! burn's WebSocket server has two routes. `/session` checks the token before it runs
//! anything; `/data`, which carries tensors from one server to another, checks nothing, and
//! burn gives no way to leave it out. So burn listens on a loopback port of its own, and the
//! door reads each connection's HTTP request line: a request for `/session` is passed through
//! to burn byte for byte, anything else (`/data`, another path, bytes that are not HTTP) gets
//! a `404` and one line in the log. This project's clients never move tensors between
//! servers, so nothing they do needs `/data`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// The only path let through: burn's session route, the one that checks the token.
pub const SESSION_PATH: &str = "/session";

/// How long a connection may take to send its request line and headers.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The most header bytes read before a request is refused (a browser sends under 2 KB).
const HEAD_LIMIT: usize = 16 * 1024;

/// Connections served at once; beyond it a connection is refused instead of costing a thread.
const MAX_OPEN: usize = 256;

/// Why a connection was turned away, as its log line says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("`{0}` is closed (only {SESSION_PATH}, which checks the token, is served)")]
    ClosedPath(String),
    #[error("not a WebSocket request ({0})")]
    NotHttp(String),
    #[error("its request did not arrive within {HEAD_TIMEOUT:?}")]
    TooSlow,
    #[error("its request headers are over {HEAD_LIMIT} bytes")]
    TooLong,
    #[error("{MAX_OPEN} connections are already open")]
    Full,
}

/// What the door decides from a request's head (its bytes up to the blank line).
pub fn admit(head: &[u8]) -> Result<(), Refusal> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| Refusal::NotHttp("no request line".into()))?;
    let line = std::str::from_utf8(&head[..line_end])
        .map_err(|_| Refusal::NotHttp("its request line is not text".into()))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::NotHttp(format!("request line {:?}", clip(line))));
    };
    if method != "GET" || !version.starts_with("HTTP/1.") {
        return Err(Refusal::NotHttp(format!("request line {:?}", clip(line))));
    }
    let path = target.split('?').next().unwrap_or(target);
    if path == SESSION_PATH {
        Ok(())
    } else {
        Err(Refusal::ClosedPath(clip(path)))
    }
}

/// A request line quoted in the log, cut short so that a stranger cannot fill it.
fn clip(text: &str) -> String {
    const KEEP: usize = 60;
    match text.char_indices().nth(KEEP) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// Accepts on `public` until the process ends, passing `/session` requests to burn's server
/// at `inner` and logging one line for each connection turned away.
pub fn open(public: TcpListener, inner: SocketAddr) {
    let open = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for stream in public.incoming() {
            let Ok(stream) = stream else { continue };
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "an unknown peer".into());
            if open.fetch_add(1, Ordering::AcqRel) >= MAX_OPEN {
                open.fetch_sub(1, Ordering::AcqRel);
                refuse(stream, &peer, &Refusal::Full);
                continue;
            }
            let open = open.clone();
            let spawned = thread::Builder::new().name("door".into()).spawn(move || {
                serve_one(stream, inner, &peer);
                open.fetch_sub(1, Ordering::AcqRel);
            });
            if let Err(err) = spawned {
                eprintln!("serve: cannot take a connection: {err}");
            }
        }
    });
}

/// One connection: read its head, then pass it through or turn it away.
fn serve_one(mut client: TcpStream, inner: SocketAddr, peer: &str) {
    let head = match read_head(&mut client) {
        Ok(head) => head,
        Err(refusal) => return refuse(client, peer, &refusal),
    };
    if let Err(refusal) = admit(&head) {
        return refuse(client, peer, &refusal);
    }
    let burn = match TcpStream::connect(inner) {
        Ok(burn) => burn,
        Err(err) => return eprintln!("serve: cannot pass {peer} to the session server: {err}"),
    };
    if let Err(err) = relay(client, burn, &head) {
        eprintln!("serve: the connection from {peer} broke: {err}");
    }
}

/// The bytes up to and including the blank line that ends the headers (and whatever came
/// with them in the same reads).
fn read_head(client: &mut TcpStream) -> Result<Vec<u8>, Refusal> {
    client
        .set_read_timeout(Some(HEAD_TIMEOUT))
        .map_err(|_| Refusal::TooSlow)?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        match client.read(&mut chunk) {
            Ok(0) => return Err(Refusal::NotHttp("it closed before a request".into())),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Refusal::TooSlow),
        }
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            client
                .set_read_timeout(None)
                .map_err(|_| Refusal::TooSlow)?;
            return Ok(head);
        }
        if head.len() > HEAD_LIMIT {
            return Err(Refusal::TooLong);
        }
    }
}

/// Answers `404`, closes, and writes the connection's one log line.
fn refuse(mut client: TcpStream, peer: &str, refusal: &Refusal) {
    eprintln!("serve: refused a connection from {peer}: {refusal}");
    let _ = client.set_write_timeout(Some(HEAD_TIMEOUT));
    let _ = client
        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = client.shutdown(Shutdown::Both);
}

/// Sends `head` to burn, then copies each way until either side closes.
fn relay(client: TcpStream, mut burn: TcpStream, head: &[u8]) -> io::Result<()> {
    client.set_nodelay(true)?;
    burn.set_nodelay(true)?;
    burn.write_all(head)?;
    let (mut client_in, mut burn_out) = (client.try_clone()?, burn.try_clone()?);
    let upstream = thread::Builder::new()
        .name("door-up".into())
        .spawn(move || {
            let copied = io::copy(&mut client_in, &mut burn_out);
            let _ = burn_out.shutdown(Shutdown::Write);
            copied
        })?;
    let (mut burn_in, mut client_out) = (burn, client);
    let down = io::copy(&mut burn_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Both);
    let _ = burn_in.shutdown(Shutdown::Both);
    let up = upstream.join().unwrap_or(Ok(0));
    // a peer that goes away mid-stream is how connections end, not a fault to log
    match (down, up) {
        (Err(e), _) | (_, Err(e)) if !ends_connection(&e) => Err(e),
        _ => Ok(()),
    }
}

fn ends_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(line: &str) -> Vec<u8> {
        format!("{line}\r\nHost: x\r\nUpgrade: websocket\r\n\r\n").into_bytes()
    }

    #[test]
    fn only_a_get_of_the_session_path_is_let_through() {
        assert_eq!(admit(&request("GET /session HTTP/1.1")), Ok(()));
        assert_eq!(admit(&request("GET /session?x=1 HTTP/1.1")), Ok(()));
        assert_eq!(
            admit(&request("GET /data HTTP/1.1")),
            Err(Refusal::ClosedPath("/data".into()))
        );
        assert_eq!(
            admit(&request("GET / HTTP/1.1")),
            Err(Refusal::ClosedPath("/".into()))
        );
        assert_eq!(
            admit(&request("GET /sessionx HTTP/1.1")),
            Err(Refusal::ClosedPath("/sessionx".into()))
        );
        for bad in [
            "POST /session HTTP/1.1",
            "GET /session",
            "GET /session SPDY/3",
        ] {
            assert!(
                matches!(admit(&request(bad)), Err(Refusal::NotHttp(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            admit(b"\x82\x85garbage"),
            Err(Refusal::NotHttp(_))
        ));
        assert!(matches!(
            admit(b"\xff\xfe\r\n\r\n"),
            Err(Refusal::NotHttp(_))
        ));
    }

    #[test]
    fn a_long_path_is_clipped_in_the_log() {
        let path = format!("/{}", "a".repeat(500));
        let Err(Refusal::ClosedPath(logged)) = admit(&request(&format!("GET {path} HTTP/1.1")))
        else {
            panic!("refused as a closed path");
        };
        assert!(logged.len() < 70 && logged.ends_with("..."), "{logged}");
    }
}
