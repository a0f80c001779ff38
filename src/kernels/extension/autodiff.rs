//! The extension on `Autodiff<B>` for any backend `B` with the kernels (flex, or a server
//! that serves them): each forward pass on `B`'s kernel, registered with burn's autograd
//! together with a backward pass on `B`'s kernel for it.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, AutodiffBackend};

use super::TrainingKernels;
use crate::kernels::adam::AdamStep;
use crate::kernels::conv::ConvSpacing;
use crate::kernels::norm::NormOptions;

/// Hands `gradient` to `node`, when autograd tracks it.
fn register<B: TrainingKernels>(
    grads: &mut Gradients,
    node: Option<NodeId>,
    gradient: FloatTensor<B>,
) {
    if let Some(node) = node {
        grads.register::<B>(node, gradient);
    }
}

/// What a convolution's or a dense layer's backward pass keeps from the forward pass.
#[derive(Clone, Debug)]
struct WeightedState<B: TrainingKernels> {
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    /// The convolution's padding and stride (unused by the dense layer).
    spacing: ConvSpacing,
}

#[derive(Debug)]
struct ConvBackward;

impl<B: TrainingKernels> Backward<B, 3> for ConvBackward {
    type State = WeightedState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        let WeightedState { x, weight, spacing } = ops.state;
        let (dx, dw, db) = B::conv2d_strided_backward(x, weight, dy, spacing, node_x.is_some());
        register::<B>(grads, node_x, dx);
        register::<B>(grads, node_w, dw);
        register::<B>(grads, node_b, db);
    }
}

#[derive(Debug)]
struct LinearBackward;

impl<B: TrainingKernels> Backward<B, 3> for LinearBackward {
    type State = WeightedState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        let WeightedState { x, weight, .. } = ops.state;
        let (dx, dw, db) = B::linear_dense_backward(x, weight, dy, node_x.is_some());
        register::<B>(grads, node_x, dx);
        register::<B>(grads, node_w, dw);
        register::<B>(grads, node_b, db);
    }
}

#[derive(Debug)]
struct PoolBackward;

/// What the pooling's backward pass keeps: each window's winner, and the input's size.
#[derive(Clone, Debug)]
struct PoolState<B: TrainingKernels> {
    winners: IntTensor<B>,
    h: usize,
    w: usize,
}

impl<B: TrainingKernels> Backward<B, 1> for PoolBackward {
    type State = PoolState<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        if node_x.is_some() {
            let PoolState { winners, h, w } = ops.state;
            register::<B>(grads, node_x, B::max_pool2x2_backward(winners, dy, h, w));
        }
    }
}

/// What the batch norm's backward pass keeps from the forward pass.
#[derive(Clone, Debug)]
struct NormState<B: TrainingKernels> {
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    mean: FloatTensor<B>,
    variance: FloatTensor<B>,
    options: NormOptions,
}

#[derive(Debug)]
struct NormBackward;

impl<B: TrainingKernels> Backward<B, 3> for NormBackward {
    type State = NormState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let (dx, dgamma, dbeta) = <B as TrainingKernels>::batch_norm_train_backward(
            s.x, s.gamma, s.beta, s.mean, s.variance, dy, s.options,
        );
        register::<B>(grads, node_x, dx);
        register::<B>(grads, node_gamma, dgamma);
        register::<B>(grads, node_beta, dbeta);
    }
}

#[derive(Debug)]
struct GeluBackward;

impl<B: TrainingKernels> Backward<B, 1> for GeluBackward {
    /// The input.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        if node_x.is_some() {
            register::<B>(grads, node_x, B::gelu_exact_backward(ops.state, dy));
        }
    }
}

/// What attention's backward pass keeps: its input, its weights and its heads.
#[derive(Clone, Debug)]
struct AttentionState<B: TrainingKernels> {
    qkv: FloatTensor<B>,
    weights: FloatTensor<B>,
    heads: usize,
}

#[derive(Debug)]
struct AttentionBackward;

impl<B: TrainingKernels> Backward<B, 1> for AttentionBackward {
    type State = AttentionState<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_qkv] = ops.parents.map(|p| p.map(|node| node.id));
        let dy = grads.consume::<B>(&ops.node);
        if node_qkv.is_some() {
            let AttentionState {
                qkv,
                weights,
                heads,
            } = ops.state;
            let dqkv = B::packed_attention_backward(qkv, weights, dy, heads);
            register::<B>(grads, node_qkv, dqkv);
        }
    }
}

impl<B: TrainingKernels, C: CheckpointStrategy> TrainingKernels for Autodiff<B, C> {
    fn conv2d_strided(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spacing: ConvSpacing,
    ) -> FloatTensor<Self> {
        let (xp, wp, bp) = (
            x.primitive().clone(),
            weight.primitive().clone(),
            bias.primitive().clone(),
        );
        let prep = ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        let output = B::conv2d_strided(xp.clone(), wp.clone(), bp, spacing);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(
                WeightedState {
                    x: xp,
                    weight: wp,
                    spacing,
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn linear_dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (xp, wp, bp) = (
            x.primitive().clone(),
            weight.primitive().clone(),
            bias.primitive().clone(),
        );
        let prep = LinearBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        let output = B::linear_dense(xp.clone(), wp.clone(), bp);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(
                WeightedState {
                    x: xp,
                    weight: wp,
                    spacing: ConvSpacing {
                        padding: [0, 0],
                        stride: [1, 1],
                    },
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn max_pool2x2(x: FloatTensor<Self>) -> (FloatTensor<Self>, IntTensor<Self>) {
        let xp = x.primitive().clone();
        let shape = xp.shape();
        let (h, w) = (shape[2], shape[3]);
        let prep = PoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let (output, winners) = B::max_pool2x2(xp);
        let output = match prep {
            OpsKind::Tracked(prep) => prep.finish(
                PoolState {
                    winners: winners.clone(),
                    h,
                    w,
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, winners)
    }

    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        options: NormOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (xp, gp, bp) = (
            x.primitive().clone(),
            gamma.primitive().clone(),
            beta.primitive().clone(),
        );
        let prep = NormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (output, mean, variance) =
            <B as TrainingKernels>::batch_norm_train(xp.clone(), gp.clone(), bp.clone(), options);
        let output = match prep {
            OpsKind::Tracked(prep) => prep.finish(
                NormState {
                    x: xp,
                    gamma: gp,
                    beta: bp,
                    mean: mean.clone(),
                    variance: variance.clone(),
                    options,
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, Self::from_inner(mean), Self::from_inner(variance))
    }

    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let xp = x.primitive().clone();
        let prep = GeluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let output = B::gelu_exact(xp.clone());
        match prep {
            OpsKind::Tracked(prep) => prep.finish(xp, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn packed_attention(
        qkv: FloatTensor<Self>,
        heads: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let qp = qkv.primitive().clone();
        let prep = AttentionBackward
            .prepare::<C>([qkv.node()])
            .compute_bound()
            .stateful();
        let (output, weights) = B::packed_attention(qp.clone(), heads);
        let output = match prep {
            OpsKind::Tracked(prep) => prep.finish(
                AttentionState {
                    qkv: qp,
                    weights: weights.clone(),
                    heads,
                },
                output,
            ),
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, Self::from_inner(weights))
    }

    // The backward passes and the rest run on inner tensors: autograd calls `B`'s
    // directly, and a tracked call gets untracked results.

    fn conv2d_strided_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        spacing: ConvSpacing,
        need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dw, db) = B::conv2d_strided_backward(
            Self::inner(x),
            Self::inner(weight),
            Self::inner(dy),
            spacing,
            need_dx,
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dw),
            Self::from_inner(db),
        )
    }

    fn linear_dense_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        need_dx: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dw, db) = B::linear_dense_backward(
            Self::inner(x),
            Self::inner(weight),
            Self::inner(dy),
            need_dx,
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dw),
            Self::from_inner(db),
        )
    }

    fn max_pool2x2_backward(
        winners: IntTensor<Self>,
        dy: FloatTensor<Self>,
        h: usize,
        w: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::max_pool2x2_backward(winners, Self::inner(dy), h, w))
    }

    fn batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        options: NormOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dgamma, dbeta) = <B as TrainingKernels>::batch_norm_train_backward(
            Self::inner(x),
            Self::inner(gamma),
            Self::inner(beta),
            Self::inner(mean),
            Self::inner(variance),
            Self::inner(dy),
            options,
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dgamma),
            Self::from_inner(dbeta),
        )
    }

    fn gelu_exact_backward(x: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::gelu_exact_backward(Self::inner(x), Self::inner(dy)))
    }

    fn packed_attention_backward(
        qkv: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        heads: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::packed_attention_backward(
            Self::inner(qkv),
            Self::inner(weights),
            Self::inner(dy),
            heads,
        ))
    }

    fn describe_device(probe: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::describe_device(Self::inner(probe)))
    }

    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (p, m, v) = B::adam_update(
            Self::inner(param),
            Self::inner(grad),
            Self::inner(moment_1),
            Self::inner(moment_2),
            step,
        );
        (
            Self::from_inner(p),
            Self::from_inner(m),
            Self::from_inner(v),
        )
    }
}
