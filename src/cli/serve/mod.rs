//! `serve`: this machine's device for other machines' runs, through burn's remote server
//! over WebSocket.

mod door;
mod one_line;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener};

use anyhow::{Context, Result, bail};
use burn::tensor::server::{RemoteServer, TokenAuthorizer, WebSocketTransport};
use clap::Args;

use crate::kernels::{Description, with_kernels};
use crate::train::{BackendChoice, select};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The port to listen on (0: any free one, printed).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// The address to listen on: this machine only unless given (0.0.0.0: every interface).
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub listen: IpAddr,
    /// The token clients must give (--token on their side). Required unless --insecure.
    #[arg(long)]
    pub token: Option<String>,
    /// Serve without a token, on loopback only (this machine's own runs and tests).
    #[arg(long)]
    pub insecure: bool,
    /// The device to serve: auto (a real GPU through wgpu, else flex), wgpu or flex.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto, ignore_case = true)]
    pub backend: BackendChoice,
}

/// What `serve` says when it listens beyond loopback: what the token guards, what the front
/// door closes, and how to cross a network nobody trusts.
const BEYOND_LOOPBACK: &str = "note: burn's server checks the token on /session only and leaves /data (tensors between servers) open, so this server serves /session alone and refuses every other path; WebSocket is not encrypted: across an untrusted network, listen on 127.0.0.1 and reach it through `ssh -L PORT:127.0.0.1:PORT HOST` or an authenticating TLS proxy";

/// Serves until Ctrl+C. The first line on stdout is `serving <backend> (<device>) on
/// ws://HOST:PORT`, for a person or a script starting it. Strangers reach the front door
/// ([`door`]), which lets only burn's token-checked `/session` route through.
pub fn serve(args: &ServeArgs) -> Result<()> {
    if args.backend == BackendChoice::Remote {
        bail!("--backend remote: a server serves one of its own devices (auto, wgpu or flex)");
    }
    let token = match (&args.token, args.insecure) {
        (Some(token), _) => Some(token),
        (None, true) if args.listen.is_loopback() => None,
        (None, true) => bail!(
            "--insecure serves without a token, so it listens on this machine only: leave out --listen {} or give a --token",
            args.listen
        ),
        (None, false) => bail!(
            "serving needs a token (--token T, given to clients with their --token), or --insecure to serve 127.0.0.1 only without one"
        ),
    };
    let (device, info) = select(args.backend)?;
    let public = TcpListener::bind((args.listen, args.port))
        .with_context(|| format!("cannot listen on {}:{}", args.listen, args.port))?;
    let port = public.local_addr()?.port();
    let inner = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("cannot open the session server's loopback port")?;
    let inner_address = inner.local_addr()?;
    let description = Description {
        backend: info.backend.clone(),
        device: info.device.clone(),
        kernels: false,
    };
    let mut server = with_kernels(RemoteServer::new([device.clone()]), &device, description);
    if let Some(token) = token {
        server = server.with_authorizer(
            TokenAuthorizer::new(token.clone()).context("--token must not be empty")?,
        );
    }
    one_line::install();
    door::open(public, inner_address);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "serving {} ({}) on ws://{}:{port}{}",
        info.backend,
        info.device,
        args.listen,
        if token.is_some() {
            ""
        } else {
            " without a token"
        }
    )?;
    out.flush()?;
    drop(out);
    if !args.listen.is_loopback() {
        eprintln!("{BEYOND_LOOPBACK}");
    }
    server
        .serve(WebSocketTransport::from_listener(inner))
        .context("the server stopped")?;
    Ok(())
}
