//! A 2-D convolution: `kernel x kernel` windows `stride` apart over images padded with
//! `padding` zeros, `groups` independent convolutions side by side (depthwise when it
//! equals the input channels).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{HostOp, HostWeight, Norm};
use super::shape::{image_of, windowed};
use super::{
    Activation, At, Attr, ChannelFlow, Fit, Forward, HostBuild, Inputs, Kind, LayerHandle,
    LayerHandleMut, LayerInput, NodeWriter, PrunableWeight, See, Setting, Shape, View,
    WriteError, Plan,
};
use crate::host::ops::{Act, grouped_conv};
use crate::host::{InferError, Linear, build_layer};
use crate::kernels::conv2d;
use crate::prune::{LayerShape, Member};

pub type Module = burn::nn::conv::Conv2d;

fn one() -> usize {
    1
}
fn is_one(v: &usize) -> bool {
    *v == 1
}
fn is_zero(v: &usize) -> bool {
    *v == 0
}
fn yes() -> bool {
    true
}
fn is_true(v: &bool) -> bool {
    *v
}

/// A square convolution to `out` channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    pub out: usize,
    pub kernel: usize,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub stride: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub padding: usize,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub groups: usize,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub bias: bool,
}

impl Plan for Conv2d {
    type Kind = Self;

    fn resolve(self, _input: Shape) -> Result<Self, Fit> {
        Ok(self)
    }

    fn of(kind: Self) -> Self {
        kind
    }

    fn template() -> Self {
        Self {
            padding: 1,
            ..Self::new(8, 3)
        }
    }

    fn settings(&mut self) -> Vec<Setting<'_>> {
        vec![
            Setting::count("out ", &mut self.out, 1, 4096),
            Setting::count("k ", &mut self.kernel, 1, 31),
            Setting::count("s ", &mut self.stride, 1, 8),
            Setting::count("p ", &mut self.padding, 0, 15),
            Setting::count("g ", &mut self.groups, 1, 4096),
            Setting::Flag {
                label: "bias",
                value: &mut self.bias,
            },
        ]
    }
}

impl Conv2d {
    /// A `kernel x kernel` convolution to `out` channels: stride 1, no padding, one group,
    /// a bias.
    pub fn new(out: usize, kernel: usize) -> Self {
        Self {
            out,
            kernel,
            stride: 1,
            padding: 0,
            groups: 1,
            bias: true,
        }
    }

    /// The weight's shape on `c` input channels.
    fn shape(&self, c: usize) -> LayerShape {
        LayerShape::conv2d(self.out, c / self.groups.max(1), self.kernel, self.kernel)
    }

    /// Whether its channel `i` is input channel `i` alone (depthwise, one filter each).
    fn depthwise(&self, c: usize) -> bool {
        self.groups == c && self.out == c
    }
}

impl Kind for Conv2d {
    const TYPE: &'static str = "conv2d";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        let (c, h, w) = image_of(inputs[0].1)?;
        let (out, kernel, groups) = (self.out, self.kernel, self.groups);
        if out == 0 || kernel == 0 || self.stride == 0 || groups == 0 {
            return Err(Fit::Invalid(
                "out, kernel, stride and groups must be at least 1".into(),
            ));
        }
        if c % groups != 0 || out % groups != 0 {
            return Err(Fit::Invalid(format!(
                "groups = {groups} must divide its {c} input channels and its {out} outputs"
            )));
        }
        windowed(out, (h, w), kernel, self.stride, self.padding).ok_or_else(|| {
            Fit::Mismatch(format!(
                "an image of at least {kernel} x {kernel} with its padding"
            ))
        })
    }

    fn weight_values(&self, input: Shape) -> u128 {
        let c = input.channels();
        (c / self.groups.max(1)) as u128 * self.out as u128 * (self.kernel as u128).pow(2)
    }

    fn prunable(&self, at: &At) -> Vec<PrunableWeight> {
        vec![PrunableWeight::plain(
            at.name,
            self.shape(at.input.channels()),
            self.bias,
        )]
    }

    fn macs(&self, at: &At) -> u64 {
        let Shape::Image { h, w, .. } = at.output else {
            return 0;
        };
        self.shape(at.input.channels()).numel() as u64 * (h * w) as u64
    }

    fn channels(&self, at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
        let x = ins[0];
        let w = flow.take_weight();
        if self.groups == 1 {
            flow.read(
                x.space,
                Member {
                    weight: w,
                    offset: 0,
                    span: self.kernel * self.kernel * x.span,
                },
            );
            let v = flow.new_space(at.output.channels(), false);
            flow.produce(v.space, w);
            v
        } else if self.depthwise(at.input.channels()) {
            // output channel i is input channel i
            flow.produce(x.space, w);
            x
        } else {
            flow.fix(x.space);
            flow.new_space(at.output.channels(), true)
        }
    }

    fn fixed_width(&self) -> bool {
        self.groups > 1 && self.groups != self.out
    }

    /// A depthwise convolution keeps one group per channel.
    fn narrow(&mut self, _at: &At, rows: &dyn Fn(usize) -> usize) -> Result<Option<(usize, usize)>, String> {
        let before = self.out;
        let after = rows(0);
        if self.groups > 1 && self.groups != before && after != before {
            // the export pins these widths: reaching here is a bug, said as such
            return Err("grouped convolutions other than depthwise keep their width".into());
        }
        self.out = after;
        if self.groups > 1 && self.groups == before {
            self.groups = after;
        }
        Ok((after != before).then_some((before, after)))
    }

    fn module(&self, at: &At, device: &Device) -> Module {
        let p = self.padding;
        Conv2dConfig::new([at.input.channels(), self.out], [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_groups(self.groups)
            .with_bias(self.bias)
            .init(device)
    }

    fn host(&self, _at: &At, build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(HostConv {
            weight: build.weight()?,
            groups: self.groups,
            k: self.kernel,
            stride: self.stride,
            pad: self.padding,
            layers: Vec::new(),
        }))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        let mut inputs = vec![xs[0].clone(), g.param(&at.key("weight"))?];
        if self.bias {
            inputs.push(g.param(&at.key("bias"))?);
        }
        let (k, s, p) = (self.kernel as i64, self.stride as i64, self.padding as i64);
        let attrs = vec![
            Attr::Ints("kernel_shape", vec![k, k]),
            Attr::Ints("strides", vec![s, s]),
            Attr::Ints("pads", vec![p, p, p, p]),
            Attr::Ints("dilations", vec![1, 1]),
            Attr::Int("group", self.groups as i64),
        ];
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(g.node("Conv", at.name, &refs, out, attrs))
    }


}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, see: See<'_>) -> Activation {
        // [batch, c, h, w] -> [batch, out, h', w']
        let x = Activation::single(inputs).image(Conv2d::TYPE);
        see(LayerInput::Conv2d(self, &x));
        Activation::Image(conv2d(self, x))
    }

    fn weights(&self) -> Vec<LayerHandle<'_>> {
        vec![LayerHandle::Conv2d(self)]
    }

    fn weights_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
        vec![LayerHandleMut::Conv2d(self)]
    }
}

/// A convolution on the host: its weight matrix `[out, in * k * k]` over image patches,
/// one layer per group of channels (one for an ungrouped convolution), built once a batch
/// norm may have folded in.
#[derive(Debug)]
struct HostConv {
    weight: HostWeight,
    groups: usize,
    k: usize,
    stride: usize,
    pad: usize,
    layers: Vec<Linear>,
}

impl HostOp for HostConv {
    fn run(&self, inputs: Vec<Act>) -> Act {
        match super::host::first(inputs) {
            Act::Maps(m) => Act::Maps(grouped_conv(&self.layers, &m, self.k, self.stride, self.pad)),
            x => x,
        }
    }

    fn stored(&self) -> usize {
        self.layers.iter().map(Linear::stored).sum()
    }

    /// `w' = w * g / sqrt(var + eps)`, `b' = (b - mean) * g / sqrt(var + eps) + beta`.
    fn fold_norm(&mut self, norm: &Norm) -> bool {
        let wt = &mut self.weight;
        for o in 0..wt.out {
            wt.w[o * wt.row..(o + 1) * wt.row]
                .iter_mut()
                .for_each(|x| *x *= norm.scale[o]);
            wt.b[o] = wt.b[o] * norm.scale[o] + norm.shift[o];
        }
        true
    }

    fn finish(&mut self, sparse: bool) {
        let wt = &self.weight;
        let out = wt.out / self.groups;
        let part = |g: usize| g * out * wt.row..(g + 1) * out * wt.row;
        self.layers = (0..self.groups)
            .map(|g| {
                let bias = wt.b[g * out..(g + 1) * out].to_vec();
                build_layer(out, wt.row, &wt.w[part(g)], &wt.mask[part(g)], bias, sparse)
            })
            .collect();
        // the layers hold the values now
        self.weight.w = Vec::new();
        self.weight.mask = Vec::new();
    }
}
