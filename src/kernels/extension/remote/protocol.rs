//! What the client and the server agree on: the id of each custom operation, and the
//! numbers each carries besides its tensors, written to burn's scalars and read back by
//! one `Scalars` implementation per type.

use std::marker::PhantomData;

use burn_ir::{CustomOpIr, ScalarIr};

use crate::kernels::adam::AdamStep;
use crate::kernels::conv::ConvSpacing;
use crate::kernels::norm::NormOptions;

/// A custom operation: its id, the same on both sides, and the type of the numbers it
/// carries besides its tensors ([`Scalars`]), so that the client's call and the server's
/// handler cannot disagree on them.
pub(super) struct Op<S> {
    pub id: &'static str,
    scalars: PhantomData<fn() -> S>,
}

impl<S: Scalars> Op<S> {
    const fn new(id: &'static str) -> Self {
        Self {
            id,
            scalars: PhantomData,
        }
    }

    /// The numbers a call of this operation carries, as the client wrote them.
    pub fn read(&self, ir: &CustomOpIr) -> S {
        S::decode(&ir.scalars).unwrap_or_else(|| {
            panic!(
                "custom operation {}: {} numbers that are not its own",
                self.id,
                ir.scalars.len()
            )
        })
    }
}

/// The operations, one per kernel.
pub(super) mod op {
    use super::{AdamStep, ConvBackward, ConvSpacing, Heads, NeedDx, NormOptions, Op, PoolInput};

    pub const CONV: Op<ConvSpacing> = Op::new("sparsity-explorer/conv2d");
    pub const CONV_BACKWARD: Op<ConvBackward> = Op::new("sparsity-explorer/conv2d-backward");
    pub const LINEAR: Op<()> = Op::new("sparsity-explorer/linear");
    pub const LINEAR_BACKWARD: Op<NeedDx> = Op::new("sparsity-explorer/linear-backward");
    pub const POOL: Op<()> = Op::new("sparsity-explorer/max-pool2x2");
    pub const POOL_BACKWARD: Op<PoolInput> = Op::new("sparsity-explorer/max-pool2x2-backward");
    pub const NORM: Op<NormOptions> = Op::new("sparsity-explorer/batch-norm");
    pub const NORM_BACKWARD: Op<NormOptions> = Op::new("sparsity-explorer/batch-norm-backward");
    pub const ADAM: Op<AdamStep> = Op::new("sparsity-explorer/adam");
    pub const GELU: Op<()> = Op::new("sparsity-explorer/gelu");
    pub const GELU_BACKWARD: Op<()> = Op::new("sparsity-explorer/gelu-backward");
    pub const ATTENTION: Op<Heads> = Op::new("sparsity-explorer/attention");
    pub const ATTENTION_BACKWARD: Op<Heads> = Op::new("sparsity-explorer/attention-backward");
    pub const DESCRIBE: Op<()> = Op::new("sparsity-explorer/describe");
}

/// The numbers of one kind of call, written to burn's scalars and read back in one place.
pub(super) trait Scalars: Sized {
    fn encode(&self) -> Vec<ScalarIr>;
    /// `None` when `scalars` are not what [`Scalars::encode`] writes.
    fn decode(scalars: &[ScalarIr]) -> Option<Self>;
}

impl Scalars for () {
    fn encode(&self) -> Vec<ScalarIr> {
        Vec::new()
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        scalars.is_empty().then_some(())
    }
}

impl Scalars for ConvSpacing {
    fn encode(&self) -> Vec<ScalarIr> {
        let [pad_h, pad_w] = self.padding;
        let [stride_h, stride_w] = self.stride;
        vec![uint(pad_h), uint(pad_w), uint(stride_h), uint(stride_w)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [
                ScalarIr::UInt(pad_h),
                ScalarIr::UInt(pad_w),
                ScalarIr::UInt(stride_h),
                ScalarIr::UInt(stride_w),
            ] => Some(ConvSpacing {
                padding: [*pad_h as usize, *pad_w as usize],
                stride: [*stride_h as usize, *stride_w as usize],
            }),
            _ => None,
        }
    }
}

/// A convolution's backward pass: its padding and stride, and whether the input's
/// gradient is needed.
pub(super) struct ConvBackward {
    pub spacing: ConvSpacing,
    pub need_dx: bool,
}

impl Scalars for ConvBackward {
    fn encode(&self) -> Vec<ScalarIr> {
        let mut scalars = self.spacing.encode();
        scalars.push(ScalarIr::Bool(self.need_dx));
        scalars
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        let (ScalarIr::Bool(need_dx), spacing) = scalars.split_last()? else {
            return None;
        };
        Some(ConvBackward {
            spacing: ConvSpacing::decode(spacing)?,
            need_dx: *need_dx,
        })
    }
}

/// Whether a backward pass computes its input's gradient.
pub(super) struct NeedDx(pub bool);

impl Scalars for NeedDx {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![ScalarIr::Bool(self.0)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [ScalarIr::Bool(need_dx)] => Some(NeedDx(*need_dx)),
            _ => None,
        }
    }
}

/// The height and width of a pooling's input, which its backward pass restores.
pub(super) struct PoolInput {
    pub h: usize,
    pub w: usize,
}

impl Scalars for PoolInput {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![uint(self.h), uint(self.w)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [ScalarIr::UInt(h), ScalarIr::UInt(w)] => Some(PoolInput {
                h: *h as usize,
                w: *w as usize,
            }),
            _ => None,
        }
    }
}

/// An attention's heads.
pub(super) struct Heads(pub usize);

impl Scalars for Heads {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![uint(self.0)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [ScalarIr::UInt(heads)] => Some(Heads(*heads as usize)),
            _ => None,
        }
    }
}

/// A batch normalization's epsilon, and whether a ReLU is folded in.
impl Scalars for NormOptions {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![ScalarIr::Float(self.epsilon), uint(self.relu as usize)]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [ScalarIr::Float(epsilon), ScalarIr::UInt(relu @ 0..=1)] => Some(NormOptions {
                epsilon: *epsilon,
                relu: *relu == 1,
            }),
            _ => None,
        }
    }
}

impl Scalars for AdamStep {
    fn encode(&self) -> Vec<ScalarIr> {
        vec![
            ScalarIr::Float(self.lr),
            ScalarIr::Float(self.beta_1.into()),
            ScalarIr::Float(self.beta_2.into()),
            ScalarIr::Float(self.epsilon.into()),
            uint(self.time),
        ]
    }
    fn decode(scalars: &[ScalarIr]) -> Option<Self> {
        match scalars {
            [
                ScalarIr::Float(lr),
                ScalarIr::Float(beta_1),
                ScalarIr::Float(beta_2),
                ScalarIr::Float(epsilon),
                ScalarIr::UInt(time),
            ] => Some(AdamStep {
                lr: *lr,
                beta_1: *beta_1 as f32,
                beta_2: *beta_2 as f32,
                epsilon: *epsilon as f32,
                time: *time as usize,
            }),
            _ => None,
        }
    }
}

/// A count or size as one of burn's scalars.
fn uint(n: usize) -> ScalarIr {
    ScalarIr::UInt(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the client writes, the server reads back unchanged, and numbers of another
    /// operation are refused.
    #[test]
    fn each_operations_numbers_read_back_as_written() {
        let step = AdamStep {
            lr: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-5,
            time: 7,
        };
        assert_eq!(AdamStep::decode(&step.encode()), Some(step));
        let spacing = ConvSpacing {
            padding: [2, 1],
            stride: [2, 3],
        };
        assert_eq!(ConvSpacing::decode(&spacing.encode()), Some(spacing));
        let conv = ConvBackward {
            spacing,
            need_dx: true,
        };
        let back = ConvBackward::decode(&conv.encode()).unwrap();
        assert_eq!((back.spacing, back.need_dx), (spacing, true));
        let pool = PoolInput::decode(&PoolInput { h: 28, w: 14 }.encode()).unwrap();
        assert_eq!((pool.h, pool.w), (28, 14));
        for relu in [false, true] {
            let norm = NormOptions {
                epsilon: 1e-5,
                relu,
            };
            assert_eq!(NormOptions::decode(&norm.encode()), Some(norm));
        }
        assert!(NeedDx::decode(&NeedDx(false).encode()).is_some_and(|n| !n.0));
        assert_eq!(<()>::decode(&().encode()), Some(()));
        // another operation's numbers
        assert!(AdamStep::decode(&spacing.encode()).is_none());
        assert!(ConvSpacing::decode(&PoolInput { h: 1, w: 1 }.encode()).is_none());
        assert!(ConvSpacing::decode(&conv.encode()).is_none());
        assert_eq!(Heads::decode(&Heads(4).encode()).map(|h| h.0), Some(4));
        assert!(Heads::decode(&NeedDx(true).encode()).is_none());
        assert!(PoolInput::decode(&Heads(4).encode()).is_none());
        assert!(ConvBackward::decode(&NormOptions::plain(0.1).encode()).is_none());
        assert!(NormOptions::decode(&[]).is_none());
        assert!(NormOptions::decode(&[ScalarIr::Float(0.1), uint(2)]).is_none());
        assert!(<()>::decode(&NeedDx(true).encode()).is_none());
    }
}
