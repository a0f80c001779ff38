//! What the activation and data-free criteria measure on a network: the norms of the
//! inputs each prunable layer sees (Wanda) and the synaptic flow through it (SynFlow).

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::module::unfold4d;
use burn::tensor::ops::UnfoldOptions;

use super::network::LayerInput;
use super::{Network, ParamError};
use crate::kernels::symmetric_padding;

impl Network {
    /// For every prunable layer, the L2 norm over `images` of each input its weights
    /// multiply: `[in]` for a linear layer, `[in * kh * kw]` for a convolution (the columns
    /// of the unfolded input, PyTorch's order). Wanda's `||x_j||_2`; run it on a copy in
    /// evaluation mode.
    pub fn input_norms(&self, images: Tensor<4>) -> Vec<Vec<f32>> {
        let mut norms = Vec::new();
        self.forward_seeing(images, &mut |input| {
            let squares = match input {
                // [batch, in] -> [in]
                LayerInput::Linear(x) => x.clone().powi_scalar(2).sum_dim(0).flatten::<1>(0, 1),
                LayerInput::Conv2d(conv, x) => {
                    // the network builder only makes symmetric padding
                    let (ph, pw) = symmetric_padding(conv).unwrap_or((0, 0));
                    let options = UnfoldOptions::new(conv.stride, [ph, pw], conv.dilation);
                    // [batch, c * kh * kw, positions] -> [c * kh * kw]
                    unfold4d(x.clone(), conv.kernel_size, options)
                        .powi_scalar(2)
                        .sum_dim(2)
                        .sum_dim(0)
                        .flatten::<1>(0, 2)
                }
            };
            norms.push(squares.into_data().iter::<f32>().map(f32::sqrt).collect());
        });
        norms
    }

    /// A copy for measuring synaptic flow: every parameter (batch-norm statistics included)
    /// replaced by its absolute value, batch norm and dropout in evaluation mode, and the
    /// parameters still requiring gradients.
    pub fn linearized(&self) -> Result<Network, ParamError> {
        let mut copy = self.clone().freeze().set_require_grad(true);
        let mut params = self.read_params();
        params
            .iter_mut()
            .for_each(|t| t.values.iter_mut().for_each(|v| *v = v.abs()));
        copy.write_params(&params)?;
        Ok(copy)
    }

    /// SynFlow's saliency of every prunable weight, PyTorch layout: `w * dR/dw` with `R` the
    /// sum of the outputs on one all-ones input of shape `input`. Call it on a
    /// [`Network::linearized`] copy, where `R = 1' |W_L| ... |W_1| 1` for a linear stack.
    pub fn synaptic_flow(&self, input: [usize; 3]) -> Vec<Vec<f32>> {
        let device = match self.prunable().first() {
            Some(super::LayerHandle::Linear(l)) => l.weight.val().device(),
            Some(super::LayerHandle::Conv2d(c)) => c.weight.val().device(),
            None => return Vec::new(),
        };
        let [c, h, w] = input;
        let ones = Tensor::<4>::ones([1, c, h, w], &device);
        let flow = self.forward(ones).sum(); // [1]
        let grads = GradientsParams::from_grads(flow.backward(), self);
        self.weight_gradient_products(&grads)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;
    use crate::model::StackConfig;

    fn network(toml: &str, device: &Device) -> Network {
        let stack: StackConfig = toml::from_str(toml).unwrap();
        Network::new(&stack, 2, device).unwrap()
    }

    /// Values `0, 1, 2, ...` scaled and centred, as a tensor of `dims`.
    fn ramp<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    #[test]
    fn input_norms_are_the_l2_norms_of_each_gemm_column() {
        let device = Device::default();
        let net = network(
            r#"input = [2, 4, 4]
            [[layers]]
            type = "conv2d"
            out = 3
            kernel = 3
            padding = 1
            [[layers]]
            type = "flatten"
            [[layers]]
            type = "linear"
            out = 2"#,
            &device,
        );
        let images = ramp([2, 2, 4, 4], &device);
        let x: Vec<f32> = images.clone().into_data().iter::<f32>().collect();
        let norms = net.input_norms(images.clone());
        // the convolution's column (c, ky, kx): every padded input it meets, over the batch
        // and the 4x4 output positions
        let at = |b: usize, c: usize, y: isize, xx: isize| -> f32 {
            if (0..4).contains(&y) && (0..4).contains(&xx) {
                x[((b * 2 + c) * 4 + y as usize) * 4 + xx as usize]
            } else {
                0.0
            }
        };
        assert_eq!(norms[0].len(), 2 * 3 * 3);
        for c in 0..2 {
            for ky in 0..3 {
                for kx in 0..3 {
                    let mut sq = 0.0f32;
                    for b in 0..2 {
                        for oy in 0..4 {
                            for ox in 0..4 {
                                let v = at(b, c, oy + ky - 1, ox + kx - 1);
                                sq += v * v;
                            }
                        }
                    }
                    let got = norms[0][(c * 3 + ky as usize) * 3 + kx as usize];
                    assert!((got - sq.sqrt()).abs() < 1e-4, "column ({c}, {ky}, {kx})");
                }
            }
        }
        // the linear layer's inputs are the flattened conv outputs: one norm per feature
        let features: Vec<f32> = match net.prunable()[0] {
            crate::model::LayerHandle::Conv2d(conv) => conv2d_reference(conv, images),
            crate::model::LayerHandle::Linear(_) => unreachable!("the first layer is a conv"),
        };
        assert_eq!(norms[1].len(), 48);
        for j in 0..48 {
            let expect = (features[j].powi(2) + features[48 + j].powi(2)).sqrt();
            assert!((norms[1][j] - expect).abs() < 1e-4, "feature {j}");
        }
    }

    fn conv2d_reference(conv: &burn::nn::conv::Conv2d, images: Tensor<4>) -> Vec<f32> {
        conv.forward(images).into_data().iter::<f32>().collect()
    }

    #[test]
    fn synaptic_flow_is_the_product_of_absolute_weights() {
        // two linear layers: R = 1' |W2| (|W1| 1 + |b1|) + 1' |b2|, so
        // dR/dW1_ij = sum_k |W2_ki| and dR/dW2_ki = sum_j |W1_ij| + |b1_i|
        let device = Device::default().autodiff();
        let net = network(
            r#"input = [1, 1, 3]
            [[layers]]
            type = "flatten"
            [[layers]]
            type = "linear"
            out = 4
            [[layers]]
            type = "relu"
            [[layers]]
            type = "linear"
            out = 2"#,
            &device,
        );
        let params = net.read_params();
        let get = |name: &str| {
            params
                .iter()
                .find(|p| p.name == name)
                .unwrap()
                .values
                .clone()
        };
        let (w1, b1, w2) = (
            get("linear1.weight"),
            get("linear1.bias"),
            get("linear3.weight"),
        );
        let flow = net.linearized().unwrap().synaptic_flow([1, 1, 3]);
        for i in 0..4 {
            let down: f32 = (0..2).map(|k| w2[k * 4 + i].abs()).sum();
            for j in 0..3 {
                let w = w1[i * 3 + j].abs();
                assert!((flow[0][i * 3 + j] - w * down).abs() < 1e-5, "W1[{i}, {j}]");
            }
            let up: f32 = (0..3).map(|j| w1[i * 3 + j].abs()).sum::<f32>() + b1[i].abs();
            for k in 0..2 {
                let w = w2[k * 4 + i].abs();
                assert!((flow[1][k * 4 + i] - w * up).abs() < 1e-5, "W2[{k}, {i}]");
            }
        }
    }
}
