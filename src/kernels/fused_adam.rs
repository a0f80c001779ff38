//! Adam in one in-place pass per parameter, with burn's own formula and state.
//!
//! burn's `Adam` spends about ten tensor passes (and as many allocations) per parameter and
//! step; on the CPU that costs as much as a layer's forward pass. [`FusedAdam`] is a burn
//! `Optimizer` with the same state type ([`AdamState`]), so `ModuleOptimizer`, its records
//! and the checkpoints stay as they are. On flex it updates parameter and moments in one
//! pass ([`super::adam::adam_update`]), and so on a server that serves the kernels; on any
//! other device it is burn's `Adam`.

use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{DType, Device, Tensor};

use super::adam::AdamStep;

/// burn's Adam with its default settings (no weight decay, no AMSGrad), fused on flex.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    fallback: Adam,
}

impl Default for FusedAdam {
    fn default() -> Self {
        // burn's defaults, set explicitly so both paths use the same constants
        let (beta_1, beta_2, epsilon) = (0.9, 0.999, 1e-5);
        let fallback = AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            fallback,
        }
    }
}

impl FusedAdam {
    fn fused_applies<const D: usize>(tensor: &Tensor<D>) -> bool {
        tensor.dtype() == DType::F32 && super::extension::kernels_run_on(&tensor.device())
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        if !Self::fused_applies(&tensor)
            || state
                .as_ref()
                .is_some_and(|s| s.momentum.max_moment_2.is_some())
        {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let (time, m, v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1,
                s.momentum.moment_2,
            ),
            None => (1, tensor.zeros_like(), tensor.zeros_like()),
        };
        let step = AdamStep {
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            time,
        };
        let (tensor, m, v) = super::extension::adam_step(tensor, grad, m, v, step);
        let state = AdamState::new(AdaptiveMomentumState::new(time, m, v));
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(state: AdamState<D>, device: &Device) -> AdamState<D> {
        Adam::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn host(t: Tensor<1>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    /// Three steps of the fused optimizer against three of burn's `Adam` on the same data:
    /// parameters and both moments agree to the last bit or nearly.
    #[test]
    fn matches_burns_adam() {
        let device = Device::flex();
        let n = 100_000;
        let p0: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let fused = FusedAdam::default();
        let reference = AdamConfig::new().build();
        let mut a = Tensor::<1>::from_data(TensorData::new(p0.clone(), [n]), &device);
        let mut b = a.clone();
        let (mut sa, mut sb) = (None, None);
        for step in 0..3 {
            let g: Vec<f32> = (0..n)
                .map(|i| ((i * 13 + step * 7) % 29) as f32 / 29.0 - 0.5)
                .collect();
            let g = Tensor::<1>::from_data(TensorData::new(g, [n]), &device);
            let (na, nsa) = fused.step(1e-3, a, g.clone(), sa);
            let (nb, nsb) = reference.step(1e-3, b, g, sb);
            (a, b, sa, sb) = (na, nb, nsa, nsb);
        }
        let close = |x: Vec<f32>, y: Vec<f32>, what: &str| {
            for (i, (x, y)) in x.iter().zip(&y).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-6 * (1.0 + y.abs()),
                    "{what}[{i}]: {x} vs {y}"
                );
            }
        };
        let (sa, sb) = (sa.unwrap(), sb.unwrap());
        assert_eq!(sa.momentum.time, sb.momentum.time);
        close(host(sa.momentum.moment_1), host(sb.momentum.moment_1), "m");
        close(host(sa.momentum.moment_2), host(sb.momentum.moment_2), "v");
        let (ha, hb) = (host(a), host(b));
        assert_ne!(ha, p0, "the parameter moved");
        close(ha, hb, "param");
    }
}
