//! `serve`: this machine's device for other machines' runs, through burn's remote server
//! over WebSocket.

use std::io::Write;
use std::net::TcpListener;

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
    /// The token clients must give (--token on their side). Required unless --insecure.
    #[arg(long)]
    pub token: Option<String>,
    /// Serve without a token, on 127.0.0.1 only (this machine's own runs and tests).
    #[arg(long)]
    pub insecure: bool,
    /// The device to serve: auto (a real GPU through wgpu, else flex), wgpu or flex.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto, ignore_case = true)]
    pub backend: BackendChoice,
}

/// Serves until Ctrl+C. The first line on stdout is `serving <backend> (<device>) on
/// ws://HOST:PORT`, for a person or a script starting it.
pub fn serve(args: &ServeArgs) -> Result<()> {
    if args.backend == BackendChoice::Remote {
        bail!("--backend remote: a server serves one of its own devices (auto, wgpu or flex)");
    }
    let (address, token) = match (&args.token, args.insecure) {
        (Some(token), _) => ("0.0.0.0", Some(token)),
        (None, true) => ("127.0.0.1", None),
        (None, false) => bail!(
            "serving needs a token (--token T, given to clients with their --token), or --insecure to serve 127.0.0.1 only without one"
        ),
    };
    let (device, info) = select(args.backend)?;
    let listener = TcpListener::bind((address, args.port))
        .with_context(|| format!("cannot listen on {address}:{}", args.port))?;
    let port = listener.local_addr()?.port();
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
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "serving {} ({}) on ws://{address}:{port}{}",
        info.backend,
        info.device,
        if token.is_some() {
            ""
        } else {
            " without a token"
        }
    )?;
    out.flush()?;
    drop(out);
    server
        .serve(WebSocketTransport::from_listener(listener))
        .context("the server stopped")?;
    Ok(())
}
