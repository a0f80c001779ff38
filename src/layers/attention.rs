//! Multi-head self-attention over tokens, PyTorch's `nn.MultiheadAttention`: one packed
//! projection to queries, keys and values (`in_proj_weight` `[3 * inner, d]`: Q, K and V
//! rows), `heads` scaled dot-product attentions side by side, and the output projection
//! (`out_proj`).

use burn::nn::{Initializer, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::host::{HostOp, first};
use super::shape::tokens_of;
use super::writer::matmul_add;
use super::{
    Activation, At, Attr, ChannelFlow, Fit, Forward, HostBuild, Inputs, Kind, LayerHandle,
    LayerHandleMut, LayerInput, NodeWriter, Plan, PrunableWeight, See, Setting,
    Shape, View, WriteError,
};
use crate::host::ops::{Act, attention};
use crate::host::{InferError, Linear as HostLinear};
use crate::kernels::{attention as packed_attention, linear};
use crate::prune::{GroupKind, LayerShape, Member, UnitGroup};

pub type Module = SelfAttention;

/// Self-attention as a plan writes it: `heads` heads, each `head_dim` wide (the features
/// over the heads when not given; a pruned export that removes heads keeps the width and
/// lowers `heads`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionPlan {
    pub heads: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
}

impl AttentionPlan {
    /// `heads` heads of the default width.
    pub fn new(heads: usize) -> Self {
        Self {
            heads,
            head_dim: None,
        }
    }
}

/// Self-attention in a resolved network: its heads and each head's width.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attention {
    pub heads: usize,
    pub head_dim: usize,
}

impl Attention {
    /// The heads side by side: `heads * head_dim` features.
    pub fn inner(&self) -> usize {
        self.heads * self.head_dim
    }
}

impl Plan for AttentionPlan {
    type Kind = Attention;

    fn resolve(self, input: Shape) -> Result<Attention, Fit> {
        let (_, d) = tokens_of(input)?;
        let heads = self.heads;
        let head_dim = match self.head_dim {
            _ if heads == 0 => return Err(Fit::Invalid("heads must be at least 1".into())),
            Some(0) => return Err(Fit::Invalid("head_dim must be at least 1".into())),
            Some(hd) => hd,
            None if d % heads != 0 => {
                return Err(Fit::Invalid(format!(
                    "heads = {heads} must divide the {d} features (or give head_dim)"
                )));
            }
            None => d / heads,
        };
        Ok(Attention { heads, head_dim })
    }

    /// The width given, as a pruned export writes it.
    fn of(kind: Attention) -> Self {
        AttentionPlan {
            heads: kind.heads,
            head_dim: Some(kind.head_dim),
        }
    }

    fn template() -> Self {
        AttentionPlan::new(4)
    }

    fn settings(&mut self) -> Vec<Setting<'_>> {
        vec![Setting::count("heads ", &mut self.heads, 1, 64)]
    }
}

impl Kind for Attention {
    const TYPE: &'static str = "attention";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        Ok(inputs[0].1)
    }

    fn weight_values(&self, input: Shape) -> u128 {
        3 * input.channels() as u128 * self.inner() as u128
    }

    fn prunable(&self, at: &At) -> Vec<PrunableWeight> {
        let d = at.input.channels();
        let projection = |part: &str, shape| {
            PrunableWeight::new(at.key(part), shape, true, Some(self.heads))
        };
        vec![
            projection("in_proj", LayerShape::linear(3 * self.inner(), d)),
            projection("out_proj", LayerShape::linear(d, self.inner())),
        ]
    }

    /// The projections on every token, and the two products of the scores.
    fn macs(&self, at: &At) -> u64 {
        let Shape::Tokens { n, .. } = at.input else {
            return 0;
        };
        let projections: u64 = self.prunable(at).iter().map(|w| w.shape.numel() as u64).sum();
        n as u64 * projections + 2 * (n * n * self.inner()) as u64
    }

    /// `in_proj` reads the tokens and `out_proj` writes a new space; the heads in between
    /// are a group of their own: head `h` is rows `h * hd .. (h + 1) * hd` of each of Q, K
    /// and V in the packed input projection, and the same columns of the output
    /// projection.
    fn channels(&self, at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
        let (in_proj, out_proj) = (flow.take_weight(), flow.take_weight());
        flow.read(ins[0].space, Member::single(in_proj));
        let v = flow.new_space(at.output.channels(), false);
        flow.produce(v.space, out_proj);
        let rows = |offset| Member {
            weight: in_proj,
            offset,
            span: self.head_dim,
        };
        let inner = self.inner();
        flow.heads(UnitGroup {
            kind: GroupKind::Heads,
            channels: self.heads,
            producers: vec![rows(0), rows(inner), rows(2 * inner)],
            readers: vec![Member {
                weight: out_proj,
                offset: 0,
                span: self.head_dim,
            }],
            carriers: Vec::new(),
        });
        v
    }

    /// Heads go whole: each head is `3 * head_dim` rows of the input projection; the
    /// output keeps the width of the input.
    fn narrow(&mut self, at: &At, rows: &dyn Fn(usize) -> usize) -> Result<Option<(usize, usize)>, String> {
        if rows(1) != at.input.channels() {
            return Err("attention's output keeps the width of its input".into());
        }
        let before = self.heads;
        self.heads = rows(0) / (3 * self.head_dim);
        Ok((self.heads != before).then_some((before, self.heads)))
    }

    fn module(&self, at: &At, device: &Device) -> Module {
        SelfAttention::new(at.input.channels(), *self, device)
    }

    fn host(&self, _at: &At, build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        let (a, b) = (build.weight()?, build.weight()?);
        Ok(Box::new(HostAttention {
            in_proj: a.layer(build.sparse),
            out_proj: b.layer(build.sparse),
            heads: self.heads,
        }))
    }

    /// On `[batch, n, d]` tokens, as products: the packed Q/K/V projection, each head's
    /// softmax of `q k^T / sqrt(head_dim)`, then the output projection.
    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let name = at.name;
        let (h, hd) = (self.heads as i64, self.head_dim as i64);
        // [batch, n, 3 h hd]
        let qkv = g.fresh(name);
        let (in_w, in_b) = (at.key("in_proj_weight"), at.key("in_proj_bias"));
        matmul_add(g, name, &xs[0], (&in_w, Some(&in_b)), qkv.clone())?;
        // [batch, n, 3, h, hd] -> [3, batch, h, n, hd]
        let split_shape = g.ints(name, &[0, 0, 3, h, hd]);
        let split = g.fresh(name);
        g.node("Reshape", name, &[&qkv, &split_shape], split.clone(), vec![]);
        let per_head = g.fresh(name);
        let perm = Attr::Ints("perm", vec![2, 0, 3, 1, 4]);
        g.node("Transpose", name, &[&split], per_head.clone(), vec![perm]);
        let mut parts = Vec::new();
        for i in 0..3 {
            let index = g.index(name, i);
            let part = g.fresh(name);
            let axis = vec![Attr::Int("axis", 0)];
            parts.push(g.node("Gather", name, &[&per_head, &index], part, axis));
        }
        let [q, k, v] = [&parts[0], &parts[1], &parts[2]];
        // [batch, h, n, n] scores
        let kt = g.fresh(name);
        let perm = Attr::Ints("perm", vec![0, 1, 3, 2]);
        g.node("Transpose", name, &[k], kt.clone(), vec![perm]);
        let raw = g.fresh(name);
        g.node("MatMul", name, &[q, &kt], raw.clone(), vec![]);
        let scale = g.scalar(name, 1.0 / (self.head_dim as f32).sqrt());
        let scaled = g.fresh(name);
        g.node("Mul", name, &[&raw, &scale], scaled.clone(), vec![]);
        let weights = g.fresh(name);
        let axis = vec![Attr::Int("axis", -1)];
        g.node("Softmax", name, &[&scaled], weights.clone(), axis);
        // [batch, h, n, hd] -> [batch, n, h hd]
        let mixed = g.fresh(name);
        g.node("MatMul", name, &[&weights, v], mixed.clone(), vec![]);
        let back = g.fresh(name);
        let perm = Attr::Ints("perm", vec![0, 2, 1, 3]);
        g.node("Transpose", name, &[&mixed], back.clone(), vec![perm]);
        let joined_shape = g.ints(name, &[0, 0, h * hd]);
        let joined = g.fresh(name);
        g.node("Reshape", name, &[&back, &joined_shape], joined.clone(), vec![]);
        let (out_w, out_b) = (at.key("out_proj.weight"), at.key("out_proj.bias"));
        matmul_add(g, name, &joined, (&out_w, Some(&out_b)), out)
    }
}

/// PyTorch's `nn.MultiheadAttention` as self-attention, in burn.
#[derive(burn::module::Module, Debug)]
pub struct SelfAttention {
    /// `[d, 3 * inner]` in burn's layout: PyTorch's `in_proj_weight` `[3 * inner, d]`
    /// transposed.
    pub in_proj: burn::nn::Linear,
    /// `[inner, d]`
    pub out_proj: burn::nn::Linear,
    #[module(skip)]
    pub heads: usize,
}

impl SelfAttention {
    /// The heads of `kind` on `d` features, initialized as PyTorch does: Xavier-uniform
    /// projections into Q, K and V, zero biases.
    pub fn new(d: usize, kind: Attention, device: &Device) -> Self {
        let inner = kind.inner();
        let mut in_proj = LinearConfig::new(d, 3 * inner)
            .with_initializer(Initializer::XavierUniform { gain: 1.0 })
            .init(device);
        in_proj.bias = Some(Initializer::Zeros.init([3 * inner], device));
        let mut out_proj = LinearConfig::new(inner, d).init(device);
        out_proj.bias = Some(Initializer::Zeros.init([d], device));
        Self {
            in_proj,
            out_proj,
            heads: kind.heads,
        }
    }

    /// `[batch, n, d]` to `[batch, n, d]`, showing `see` what each projection reads
    /// (`[batch * n, d]`): the tokens, then the heads' concatenated outputs.
    pub fn attend(&self, x: Tensor<3>, see: See<'_>) -> Tensor<3> {
        let [batch, n, d] = x.dims();
        // the heads side by side: `inner` features
        let inner = self.out_proj.weight.dims()[0];
        let rows = x.reshape([batch * n, d]);
        see(LayerInput::Linear(&rows));
        let qkv = linear(&self.in_proj, rows).reshape([batch, n, 3 * inner]);
        // [batch, n, 3 * inner] -> [batch, n, inner] -> [batch * n, inner]
        let mixed = packed_attention(qkv, self.heads).reshape([batch * n, inner]);
        see(LayerInput::Linear(&mixed));
        linear(&self.out_proj, mixed).reshape([batch, n, d])
    }
}

impl Forward for SelfAttention {
    fn forward(&self, inputs: Vec<Activation>, see: See<'_>) -> Activation {
        let x = Activation::single(inputs).tokens(Attention::TYPE);
        Activation::Tokens(self.attend(x, see))
    }

    fn weights(&self) -> Vec<LayerHandle<'_>> {
        vec![
            LayerHandle::Linear(&self.in_proj),
            LayerHandle::Linear(&self.out_proj),
        ]
    }

    fn weights_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        vec![
            LayerHandleMut::Linear(&mut self.in_proj),
            LayerHandleMut::Linear(&mut self.out_proj),
        ]
    }
}

/// Attention on the host, over token columns.
#[derive(Debug)]
struct HostAttention {
    in_proj: HostLinear,
    out_proj: HostLinear,
    heads: usize,
}

impl HostOp for HostAttention {
    fn run(&self, inputs: Vec<Act>) -> Act {
        match first(inputs) {
            Act::Features(f) => {
                Act::Features(attention(&f, &self.in_proj, &self.out_proj, self.heads))
            }
            x => x,
        }
    }

    fn stored(&self) -> usize {
        self.in_proj.stored() + self.out_proj.stored()
    }
}

