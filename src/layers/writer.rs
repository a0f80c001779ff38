//! Where a layer writes itself as the nodes of an ONNX graph: [`NodeWriter`], which the
//! ONNX export implements on its protobuf graph, so that each kind says which standard
//! operators it is without knowing the file format.

use thiserror::Error;

/// A node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
}

/// A network that cannot be written as a graph.
#[derive(Debug, Error)]
pub enum WriteError {
    #[error("the network cannot be written to ONNX: {0}")]
    Network(String),
    #[error("the network cannot be written to ONNX: no parameter {0}")]
    Missing(String),
}

/// A graph being written: nodes, and the network's parameters as initializers.
pub trait NodeWriter {
    /// A fresh name for an intermediate value of layer `hint`.
    fn fresh(&mut self, hint: &str) -> String;

    /// Adds a node `op` of layer `layer` reading `inputs`, writing `out`; returns `out`.
    fn node(
        &mut self,
        op: &str,
        layer: &str,
        inputs: &[&str],
        out: String,
        attrs: Vec<Attr>,
    ) -> String;

    /// The network's parameter `key`, written under its own name; returns the name.
    fn param(&mut self, key: &str) -> Result<String, WriteError>;

    /// The `[out, in]` parameter `key` stored transposed, `[in, out]`, for MatMul.
    fn param_transposed(&mut self, key: &str) -> Result<String, WriteError>;

    /// Whether the network has parameter `key`.
    fn has(&self, key: &str) -> bool;

    /// A constant of i64 values (a shape, an index); returns its name.
    fn ints(&mut self, hint: &str, values: &[i64]) -> String;

    /// A constant i64 scalar (an index); returns its name.
    fn index(&mut self, hint: &str, value: i64) -> String;

    /// A constant f32 scalar; returns its name.
    fn scalar(&mut self, hint: &str, value: f32) -> String;
}

/// `x @ W^T (+ b)` over the last axis, `W` the `[out, in]` parameter `wk` (a dense layer on
/// tokens, attention's projections).
pub fn matmul_add(
    g: &mut dyn NodeWriter,
    name: &str,
    x: &str,
    (wk, bk): (&str, Option<&str>),
    out: String,
) -> Result<String, WriteError> {
    let wt = g.param_transposed(wk)?;
    let Some(bk) = bk.filter(|b| g.has(b)) else {
        return Ok(g.node("MatMul", name, &[x, &wt], out, vec![]));
    };
    let b = g.param(bk)?;
    let product = g.fresh(name);
    g.node("MatMul", name, &[x, &wt], product.clone(), vec![]);
    Ok(g.node("Add", name, &[&product, &b], out, vec![]))
}
