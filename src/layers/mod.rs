//! The layer kinds, one file each: what a plan writes (its config), the shape it gives,
//! the weights pruning masks and the parameters it keeps, the channel spaces it ties or
//! carries for channel groups, its burn module and forward step, its host-inference
//! operation, and the nodes it is written as in an ONNX graph (and, for a kind that is one
//! node without attributes, the node it is read from).
//!
//! The kinds meet the rest of the code only through [`Kind`] and the registry below: the
//! network's resolution (`model/stack`), its burn module (`model/network`), host inference
//! (`infer/net.rs`), the ONNX writer and the network editor each call the method they need
//! on the [`Resolved`] enum or the plan's `LayerConfig`, never a kind by name. Adding a kind is one
//! new file here and one line in [`registry!`].

mod channels;
mod host;
mod settings;
mod shape;
mod value;
mod writer;

use burn::module::Module;
use burn::tensor::Device;

pub use attention::{Attention, SelfAttention};
pub use channels::{ChannelFlow, View};
pub use host::{HostBuild, HostOp, HostWeight, Norm, param};
pub use settings::Setting;
pub use shape::{Inputs, Shape, window_out};
pub use value::{
    Activation, Forward, HostTensor, LayerHandle, LayerHandleMut, LayerInput, See, Take,
    host_vector, set_param, set_vector,
};
pub use writer::{Attr, NodeWriter, WriteError};

use crate::host::InferError;
use crate::prune::LayerShape;

/// Every kind, once: `Variant(file::Config) as ModuleVariant`, in the order editors list
/// them. The plan's `type = "..."` is the variant in snake case; the kind's burn module is
/// `file::Module`, and the module variant names it in a checkpoint, so it stays what it
/// was when the kind was added. `registry!(then)` hands the list to the macro `then`.
macro_rules! registry {
    ($then:ident) => {
        $crate::layers::registry! { @expand $then
            Conv2d(conv2d::Conv2d) as Conv2d,
            Linear(linear::Linear) as Linear,
            Maxpool2d(maxpool2d::Maxpool2d) as MaxPool,
            Avgpool2d(avgpool2d::Avgpool2d) as AvgPool,
            GlobalAvgpool(global_avgpool::GlobalAvgpool) as GlobalAvgPool,
            Batchnorm2d(batchnorm2d::Batchnorm2d) as BatchNorm,
            Layernorm(layernorm::Layernorm) as LayerNorm,
            Relu(relu::Relu) as Relu,
            Gelu(gelu::Gelu) as Gelu,
            Tanh(tanh::Tanh) as Tanh,
            Sigmoid(sigmoid::Sigmoid) as Sigmoid,
            Dropout(dropout::Dropout) as Dropout,
            Flatten(flatten::Flatten) as Flatten,
            Tokens(tokens::Tokens) as Tokens,
            Position(position::Position) as Position,
            Attention(attention::AttentionPlan) as Attention,
            MeanTokens(mean_tokens::MeanTokens) as MeanTokens,
            Add(add::Add) as Add,
            Concat(concat::Concat) as Concat,
        }
    };
    (@expand $then:ident $($name:ident($file:ident::$plan:ident) as $module:ident,)*) => {
        $then! {
            $($name[$file::$plan]($crate::layers::$file::$plan) as $module($crate::layers::$file::Module),)*
        }
    };
}
pub(crate) use registry;

/// Why a layer does not fit what it reads (the network adds the layer's name and kind).
#[derive(Clone, Debug, PartialEq)]
pub enum Fit {
    /// It takes another kind of value: what it expected.
    Mismatch(String),
    /// Its own settings are impossible, or do not fit its input: why.
    Invalid(String),
}

/// A resolved layer as its kind sees it: its name and the shapes around it.
#[derive(Clone, Copy, Debug)]
pub struct At<'a> {
    pub name: &'a str,
    /// Its (first) input.
    pub input: Shape,
    pub output: Shape,
}

impl At<'_> {
    /// `{name}.{part}`: a parameter's `state_dict` name.
    pub fn key(&self, part: &str) -> String {
        format!("{}.{part}", self.name)
    }
}

/// A weight that pruning masks: a convolution's, a dense layer's, or one of attention's
/// two projections.
#[derive(Clone, Debug, PartialEq)]
pub struct PrunableWeight {
    /// The name rules and masks use (`blocks.0.c1`, `encoder.layers.0.self_attn.in_proj`).
    pub name: String,
    /// The weight's and the bias's names in a `state_dict`.
    pub weight_key: String,
    pub bias_key: Option<String>,
    pub shape: LayerShape,
    /// Attention's heads, for its projections.
    pub heads: Option<usize>,
}

impl PrunableWeight {
    /// The weight named `name` as rules and masks name it, with its `state_dict` keys
    /// ([`weight_key`], and [`bias_key`] when it has a bias).
    pub fn new(name: String, shape: LayerShape, bias: bool, heads: Option<usize>) -> Self {
        Self {
            weight_key: weight_key(&name),
            bias_key: bias.then(|| bias_key(&name)),
            name,
            shape,
            heads,
        }
    }

    /// The weight `{name}.weight` (and `{name}.bias`) of a layer that has one.
    pub fn plain(name: &str, shape: LayerShape, bias: bool) -> Self {
        Self::new(name.to_string(), shape, bias, None)
    }
}

/// The `state_dict` name of a prunable weight's tensor: `{layer}.weight`, except for
/// attention's packed input projection, which PyTorch's `nn.MultiheadAttention` names
/// `in_proj_weight` (its output projection is a plain `out_proj.weight`).
pub fn weight_key(layer: &str) -> String {
    match layer.strip_suffix(".in_proj") {
        Some(attention) => format!("{attention}.in_proj_weight"),
        None => format!("{layer}.weight"),
    }
}

/// The `state_dict` name of a prunable weight's bias (see [`weight_key`]).
pub fn bias_key(layer: &str) -> String {
    match layer.strip_suffix(".in_proj") {
        Some(attention) => format!("{attention}.in_proj_bias"),
        None => format!("{layer}.bias"),
    }
}

/// A layer as a plan writes it, on its way to a layer of the network: the kind it
/// resolves to given the shape it reads (most kinds resolve to themselves; attention fixes
/// its heads' width), and what an editor and a repeat's copies need of it.
pub trait Plan: Sized {
    type Kind: Kind;

    /// The kind checked against the shape it reads.
    fn resolve(self, input: Shape) -> Result<Self::Kind, Fit>;

    /// A resolved kind as a plan writes it (a narrower network written out).
    fn of(kind: Self::Kind) -> Self;

    /// Its settings for a new layer of this kind in an editor.
    fn template() -> Self;

    /// Its settings, for an editor to show and change.
    fn settings(&mut self) -> Vec<Setting<'_>> {
        Vec::new()
    }

    /// The layers it merges, by name: `None` for a layer that reads one.
    fn merged(&self) -> Option<&[String]> {
        None
    }

    /// The names it merges, to rename them (a repeat's copies).
    fn merged_mut(&mut self) -> Option<&mut Vec<String>> {
        None
    }
}

/// What one kind of layer is and does, everywhere the explorer meets it.
pub trait Kind {
    /// The type as plans write it (`conv2d`).
    const TYPE: &'static str;
    /// The burn module that trains it.
    type Module: Forward;

    /// What it outputs from its inputs (`inputs[0]` for a layer that reads one).
    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit>;

    /// How many values its weight holds, to refuse a layer too large to train.
    fn weight_values(&self, _input: Shape) -> u128 {
        0
    }

    /// The weights pruning masks, in order.
    fn prunable(&self, _at: &At) -> Vec<PrunableWeight> {
        Vec::new()
    }

    /// Its parameters other than the prunable weights and their biases, as a
    /// `state_dict` names and shapes them.
    fn state(&self, _at: &At) -> Vec<(String, Vec<usize>)> {
        Vec::new()
    }

    /// Multiply-adds of one example through it.
    fn macs(&self, _at: &At) -> u64 {
        0
    }

    /// The channel space its output holds, given its inputs' (`ins`); the layers that
    /// work channel by channel pass their input's on.
    fn channels(&self, _at: &At, _flow: &mut ChannelFlow, ins: &[View]) -> View {
        ins[0]
    }

    /// Whether its weight's channels must keep their width (a grouped convolution other
    /// than a depthwise one splits them into groups of fixed size).
    fn fixed_width(&self) -> bool {
        false
    }

    /// Narrows it to the rows its weights keep (`rows(i)`: the kept rows of its `i`-th
    /// prunable weight), for the physically smaller network an export writes. Returns its
    /// width before and after when it changed, or why it cannot narrow.
    fn narrow(
        &mut self,
        _at: &At,
        _rows: &dyn Fn(usize) -> usize,
    ) -> Result<Option<(usize, usize)>, String> {
        Ok(None)
    }

    /// Its burn module, freshly initialized.
    fn module(&self, at: &At, device: &Device) -> Self::Module;

    /// Its host operation, its parameters taken from `build`.
    fn host(&self, at: &At, build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError>;

    /// Writes its nodes reading `xs` into `g`, its output named `out`; returns that name.
    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError>;

    /// The one node without attributes this kind is read from (`Sigmoid`), if it is.
    fn read_from() -> Option<&'static str> {
        None
    }
}

/// The resolved kind and the burn module enums, and their dispatch (the plan's enum,
/// with its `repeat` blocks, is `model::stack::LayerConfig`, from the same registry).
macro_rules! kind_enums {
    ($($name:ident[$file:ident::$config:ident]($plan:ty) as $module:ident($module_ty:ty),)*) => {
        $(pub(crate) mod $file;)*

        $(pub use $file::$config;)*

        /// A layer of a resolved network: a kind that resolution has checked against the
        /// shape it reads.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Resolved {
            $($name(<$plan as Plan>::Kind),)*
        }

        /// One layer's burn module.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum LayerModule {
            $($module($module_ty),)*
        }

        impl Resolved {
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Resolved::$name(_) => <<$plan as Plan>::Kind as Kind>::TYPE,)*
                }
            }
            pub fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
                match self { $(Resolved::$name(k) => k.output(inputs),)* }
            }
            pub fn weight_values(&self, input: Shape) -> u128 {
                match self { $(Resolved::$name(k) => k.weight_values(input),)* }
            }
            pub fn prunable(&self, at: &At) -> Vec<PrunableWeight> {
                match self { $(Resolved::$name(k) => k.prunable(at),)* }
            }
            pub fn state(&self, at: &At) -> Vec<(String, Vec<usize>)> {
                match self { $(Resolved::$name(k) => k.state(at),)* }
            }
            pub fn macs(&self, at: &At) -> u64 {
                match self { $(Resolved::$name(k) => k.macs(at),)* }
            }
            pub fn channels(&self, at: &At, flow: &mut ChannelFlow, ins: &[View]) -> View {
                match self { $(Resolved::$name(k) => k.channels(at, flow, ins),)* }
            }
            pub fn fixed_width(&self) -> bool {
                match self { $(Resolved::$name(k) => k.fixed_width(),)* }
            }
            pub fn narrow(&mut self, at: &At, rows: &dyn Fn(usize) -> usize) -> Result<Option<(usize, usize)>, String> {
                match self { $(Resolved::$name(k) => k.narrow(at, rows),)* }
            }
            pub fn module(&self, at: &At, device: &Device) -> LayerModule {
                match self { $(Resolved::$name(k) => LayerModule::$module(k.module(at, device)),)* }
            }
            pub fn host(&self, at: &At, build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
                match self { $(Resolved::$name(k) => k.host(at, build),)* }
            }
            pub fn write(
                &self,
                at: &At,
                g: &mut dyn NodeWriter,
                xs: &[String],
                out: String,
            ) -> Result<String, WriteError> {
                match self { $(Resolved::$name(k) => k.write(at, g, xs, out),)* }
            }
        }

        impl LayerModule {
            /// The layer's forward step on its inputs, showing `see` what a prunable weight
            /// multiplies.
            pub fn forward(&self, inputs: Vec<Activation>, see: See<'_>) -> Activation {
                match self { $(LayerModule::$module(m) => Forward::forward(m, inputs, see),)* }
            }

            /// The prunable weights' burn layers, in order.
            pub fn prunable(&self) -> Vec<LayerHandle<'_>> {
                match self { $(LayerModule::$module(m) => m.weights(),)* }
            }

            pub fn prunable_mut(&mut self) -> Vec<LayerHandleMut<'_>> {
                match self { $(LayerModule::$module(m) => m.weights_mut(),)* }
            }

            /// Its parameters other than the prunable weights, on the host.
            pub fn read_state(&self, name: &str) -> Vec<HostTensor> {
                match self { $(LayerModule::$module(m) => m.read_state(name),)* }
            }

            /// Replaces them, each read by `take` from its name.
            pub fn write_state(&mut self, name: &str, take: Take<'_>) {
                match self { $(LayerModule::$module(m) => m.write_state(name, take),)* }
            }
        }
    };
}

registry!(kind_enums);

#[cfg(test)]
mod tests {
    use crate::model::{Layer, LayerConfig, StackConfig};

    /// Each kind's `TYPE` is the name plans write it by, and its template survives a plan
    /// file: the registry and serde agree.
    #[test]
    fn every_kind_reads_back_from_a_plan_by_its_type_name() {
        for template in LayerConfig::templates() {
            let name = template.type_name();
            let stack = StackConfig {
                input: [1, 4, 4],
                layers: vec![Layer::new(template.clone())],
            };
            let text = toml::to_string(&stack).unwrap();
            assert!(text.contains(&format!("type = \"{name}\"")), "{text}");
            let back: StackConfig = toml::from_str(&text).unwrap();
            assert_eq!(back.layers[0].config, template, "{name}");
        }
    }

    #[test]
    fn the_one_node_kinds_are_read_from_their_node() {
        for op in LayerConfig::read_ops() {
            let config = LayerConfig::read_from(op).unwrap();
            assert_eq!(config.type_name().to_lowercase(), op.to_lowercase());
        }
        assert!(LayerConfig::read_from("Sigmoid").is_some());
        assert!(LayerConfig::read_from("Conv").is_none());
    }
}
