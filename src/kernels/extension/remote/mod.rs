//! The kernels on another machine. The client half ships each call as one of burn's custom
//! operations (`OperationIr::Custom`, with the call's tensors and numbers); the server half
//! ([`with_kernels`], in `serve`) runs it there with the flex implementation. One custom
//! operation replaces the dozen standard ones a dense layer's or an Adam step's burn code
//! sends, each its own message and its own pass over memory.
//!
//! Before training, a client asks the server what it serves ([`describe`]): its device's
//! name, for the status bar, and whether the kernels run there. Only a flex server has
//! them; on a GPU server a run uses burn's own operations.
//!
//! [`protocol`] holds what both halves agree on (each operation's id and the numbers it
//! carries), [`client`] the client half and the registry of servers that run the kernels,
//! [`server`] the handlers.

mod client;
mod protocol;
mod server;

pub use client::describe;
pub(super) use client::serves_kernels;
pub use server::with_kernels;
