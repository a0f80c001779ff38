//! burn's remote backend on loopback: `serve` started by the test on flex, a run trained
//! through it, a wrong token, and a server that is not there. Nothing here reaches beyond
//! 127.0.0.1.

use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::Server;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparsity-explorer"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn last_event(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("output")).unwrap()
}

/// Events from `worker` until one meets `stop` (returned), failing after two minutes; a
/// worker error fails the test unless `stop` takes it.
fn wait_for(
    worker: &sparsity_explorer::train::Worker,
    what: &str,
    stop: impl Fn(&sparsity_explorer::train::Event) -> bool,
) -> sparsity_explorer::train::Event {
    use sparsity_explorer::train::Event;
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        if let Ok(e) = worker.recv_timeout(left) {
            if stop(&e) {
                return e;
            }
            if let Event::Error { error, .. } = &e {
                panic!("{what}: {error}");
            }
        }
    }
}

/// `run --preset quick-demo` for one short epoch with `extra` arguments, as its summary.
fn quick_run(extra: &[&str]) -> Value {
    let mut args = vec![
        "run",
        "--preset",
        "quick-demo",
        "--epochs",
        "1",
        "--begin",
        "20",
        "--end",
        "50",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = last_event(&out);
    assert_eq!(summary["event"], "summary");
    summary
}

/// A run trained through `server` (token `s3cret`) has the accuracy of the same run here:
/// the same seed gives the same accuracy.
fn trains_as_here(server: &Server) -> Value {
    let summary = quick_run(&["--remote", &server.url, "--token", "s3cret"]);
    let local = quick_run(&["--backend", "flex"]);
    let (remote_acc, local_acc) = (
        summary["final_accuracy"].as_f64().unwrap(),
        local["final_accuracy"].as_f64().unwrap(),
    );
    eprintln!("final accuracy: remote {remote_acc:.4}, local {local_acc:.4}");
    assert!(
        (remote_acc - local_acc).abs() <= 0.005,
        "remote {remote_acc} local {local_acc}"
    );
    summary
}

#[test]
fn a_run_trains_through_a_served_device_and_says_so() {
    let server = Server::start(Some("s3cret"));
    let summary = trains_as_here(&server);
    assert_eq!(summary["backend"], "remote");
    assert!(
        summary["device"].as_str().unwrap().contains(&server.url),
        "{summary}"
    );
    assert!((summary["sparsity"].as_f64().unwrap() - 0.9).abs() < 0.01);
}

/// A stranger's connection: `head` sent as it is, then (when the server upgrades it to a
/// WebSocket) `frames` binary frames of random bytes. Returns the server's status line.
fn stranger(server: &Server, head: &[u8], frames: usize, seed: u64) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;
    let mut socket = TcpStream::connect(server.address()).expect("the server listens");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    socket.write_all(head).unwrap();
    let mut reader = BufReader::new(socket.try_clone().unwrap());
    let mut status = String::new();
    let _ = reader.read_line(&mut status);
    if status.starts_with("HTTP/1.1 101") {
        let mut state = seed | 1;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..frames {
            // a masked binary frame, as a client sends it
            let len = (random() % 120) as usize + 1;
            let mask = (random() as u32).to_le_bytes();
            let mut frame = vec![0x82, 0x80 | len as u8];
            frame.extend_from_slice(&mask);
            frame.extend((0..len).map(|i| random() as u8 ^ mask[i % 4]));
            if socket.write_all(&frame).is_err() {
                break;
            }
        }
    }
    // until the server closes it
    let _ = reader.read_to_end(&mut Vec::new());
    status.trim().to_string()
}

fn upgrade(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn strangers_cost_one_log_line_each_and_a_client_still_trains() {
    let server = Server::start(Some("s3cret"));
    let data = stranger(&server, &upgrade("/data"), 5, 1);
    let unknown = stranger(&server, &upgrade("/admin"), 5, 2);
    let not_http = stranger(&server, b"\x82\x85\x01\x02\x03\x04garbage\r\n\r\n", 0, 3);
    assert!(data.contains("404"), "/data answered {data:?}");
    assert!(unknown.contains("404"), "/admin answered {unknown:?}");
    assert!(
        not_http.contains("404"),
        "non-HTTP bytes answered {not_http:?}"
    );
    // the session route is burn's: it upgrades, then rejects what is not its handshake
    let sessions = 3;
    for seed in 0..sessions {
        let session = stranger(&server, &upgrade("/session"), 20, 10 + seed);
        assert!(session.contains("101"), "/session answered {session:?}");
    }
    // the server still serves, and a real client trains there as it does here
    trains_as_here(&server);
    let log = server.log_text();
    eprintln!("{log}");
    assert!(
        !log.contains("panicked") && !log.contains("backtrace"),
        "{log}"
    );
    let refused = log
        .lines()
        .filter(|l| l.contains("refused a connection"))
        .count();
    assert_eq!(refused, 3, "one line for each refused connection:\n{log}");
    assert!(log.contains("`/data` is closed"), "{log}");
    assert!(
        log.lines().count() <= 3 + sessions as usize,
        "at most one line a connection:\n{log}"
    );
}

#[test]
fn a_server_listens_on_loopback_unless_told_and_says_what_is_open_beyond_it() {
    let here = Server::start(Some("s3cret"));
    assert!(
        here.banner.contains("on ws://127.0.0.1:"),
        "{}",
        here.banner
    );
    let everywhere =
        Server::start_with(&["--backend", "flex", "--token", "t", "--listen", "0.0.0.0"])
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        everywhere.banner.contains("on ws://0.0.0.0:"),
        "{}",
        everywhere.banner
    );
    let started = std::time::Instant::now();
    while !everywhere.log_text().contains("ssh -L") && started.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let note = everywhere.log_text();
    assert!(
        note.contains("/data") && note.contains("/session") && note.contains("ssh -L"),
        "{note}"
    );
    assert_eq!(note.lines().count(), 1, "{note}");
    // without a token, only this machine may connect
    let out = run(&["serve", "--port", "0", "--insecure", "--listen", "0.0.0.0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--insecure") && stderr.contains("--token"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_token_and_a_missing_server_are_one_clear_line() {
    let server = Server::start(Some("right"));
    let out = run(&[
        "run",
        "--preset",
        "quick-demo",
        "--remote",
        &server.url,
        "--token",
        "wrong",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.contains("refused the token"), "{stderr}");
    // a port nothing listens on
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("ws://127.0.0.1:{closed}");
    let out = run(&["run", "--preset", "quick-demo", "--remote", &url]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the server at {url}")),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{stderr}"
    );
    // and a server started without a token without saying so is refused
    let out = run(&["serve", "--port", "0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("serving needs a token"));
}

#[test]
fn a_server_lost_mid_run_leaves_a_copy_that_continues_locally() {
    use sparsity_explorer::plan::ExperimentPlan;
    use sparsity_explorer::train::{BackendChoice, Command as WorkerCommand, Event, Worker};

    let mut server = Server::start(None);
    let mut plan = ExperimentPlan::preset("lenet300-agp90").unwrap();
    plan.training.backend = BackendChoice::Remote;
    plan.training.remote = Some(server.url.clone());
    let worker = Worker::spawn(None);
    worker.send(WorkerCommand::Start(Box::new(plan)));
    wait_for(
        &worker,
        "training through the server",
        |e| matches!(e, Event::Progress { step, .. } if *step > 30),
    );
    // the server goes away mid-run
    let _ = server.child.kill();
    let _ = server.child.wait();
    let error = wait_for(&worker, "the error", |e| matches!(e, Event::Error { .. }));
    let Event::Error {
        run_ended, error, ..
    } = error
    else {
        unreachable!()
    };
    assert!(run_ended, "{error}");
    let Event::RemoteLost { step: kept } = wait_for(&worker, "the kept copy", |e| {
        matches!(e, Event::RemoteLost { .. })
    }) else {
        unreachable!()
    };
    worker.send(WorkerCommand::ContinueLocally);
    let Event::Started { backend, .. } = wait_for(&worker, "the local run", |e| {
        matches!(e, Event::Started { .. })
    }) else {
        unreachable!()
    };
    assert_eq!(backend.backend, "flex");
    wait_for(
        &worker,
        "local training past the kept step",
        |e| matches!(e, Event::Progress { step, .. } if *step > kept),
    );
    worker.send(WorkerCommand::Stop);
}

#[test]
fn a_sweep_spread_over_two_servers_survives_losing_one() {
    use sparsity_explorer::plan::ExperimentPlan;
    use sparsity_explorer::prune::{At, Granularity, Schedule};
    use sparsity_explorer::train::{
        BackendChoice, Command as WorkerCommand, Event, SweepRequest, Worker,
    };

    let (a, mut b) = (Server::start(None), Server::start(None));
    let mut plan = ExperimentPlan::preset("quick-demo").unwrap();
    plan.training.backend = BackendChoice::Remote;
    plan.training.remote = Some(format!("{},{}", a.url, b.url));
    plan.pruning.schedule = Schedule::OneShot {
        target: 0.5,
        at: At::Step(u64::MAX / 4),
    };
    let worker = Worker::spawn(None);
    worker.send(WorkerCommand::Start(Box::new(plan)));
    wait_for(
        &worker,
        "a trained model",
        |e| matches!(e, Event::Progress { step, .. } if *step > 20),
    );
    worker.send(WorkerCommand::Pause);
    let targets = vec![0.3, 0.5, 0.7, 0.8, 0.9, 0.95];
    worker.send(WorkerCommand::Sweep(SweepRequest {
        targets: targets.clone(),
        granularities: vec![Granularity::Unstructured],
        criteria: Vec::new(),
        fine_tune_epochs: 0.5,
        servers: Vec::new(),
    }));
    // the first point in, one server goes away
    let Event::SweepProgress { point, .. } = wait_for(&worker, "a first point", |e| {
        matches!(e, Event::SweepProgress { .. })
    }) else {
        unreachable!()
    };
    assert!(point.server.is_some(), "{point:?}");
    let _ = b.child.kill();
    let _ = b.child.wait();
    let Event::SweepFinished { result, cancelled } = wait_for(&worker, "the whole sweep", |e| {
        matches!(e, Event::SweepFinished { .. })
    }) else {
        unreachable!()
    };
    assert!(!cancelled);
    let mut got: Vec<f64> = result.points.iter().map(|p| p.target).collect();
    got.sort_by(f64::total_cmp);
    assert_eq!(got, targets, "every point measured once");
    let servers: Vec<&str> = result
        .points
        .iter()
        .filter_map(|p| p.server.as_deref())
        .collect();
    assert_eq!(servers.len(), targets.len(), "each point names its server");
    assert!(servers.iter().all(|s| *s == a.url || *s == b.url));
    assert!(
        servers.contains(&a.url.as_str()),
        "the surviving server took over"
    );
}

/// A dense model trained here on flex (one epoch of quick-demo) saved as a checkpoint in
/// a fresh folder, for the analyses to spread: the folder and the file.
fn dense_checkpoint(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("se-remote-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("dense.ckpt");
    let trained = run(&[
        "run",
        "--preset",
        "quick-demo",
        "--backend",
        "flex",
        "--epochs",
        "1",
        "--target",
        "0",
        "--save-checkpoint",
        ckpt.to_str().unwrap(),
    ]);
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    (dir, ckpt)
}

#[test]
fn a_sweep_of_a_model_trained_here_spreads_its_points_over_the_servers() {
    let (a, b) = (Server::start(None), Server::start(None));
    let (dir, ckpt) = dense_checkpoint("sweep");
    let servers = format!("{},{}", a.url, b.url);
    let out = run(&[
        "sweep",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--targets",
        "0.5,0.8,0.9",
        "--granularities",
        "unstructured",
        "--budget",
        "0.5",
        "--remote",
        &servers,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = last_event(&out);
    let points = result["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    for p in points {
        let server = p["server"]
            .as_str()
            .unwrap_or_else(|| panic!("no server: {p}"));
        assert!(server == a.url || server == b.url, "{server}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_sensitivity_analysis_spread_over_servers_measures_what_it_measures_here() {
    let (a, b) = (Server::start(None), Server::start(None));
    let (dir, ckpt) = dense_checkpoint("sens");
    let args = [
        "sensitivity",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--levels",
        "0.5,0.9",
        "--json",
    ];
    let here = last_event(&run(&args));
    let servers = format!("{},{}", a.url, b.url);
    let spread = run(&[&args[..], &["--remote", &servers]].concat());
    assert!(
        spread.status.success(),
        "{}",
        String::from_utf8_lossy(&spread.stderr)
    );
    let spread = last_event(&spread);
    assert_eq!(spread["event"], "sensitivity");
    assert_eq!(spread["layers"].as_array().unwrap().len(), 3);
    for (x, y) in here["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(spread["layers"].as_array().unwrap())
    {
        assert_eq!(x["accuracy"], y["accuracy"], "{}", x["name"]);
    }
    std::fs::remove_dir_all(dir).unwrap();
}
