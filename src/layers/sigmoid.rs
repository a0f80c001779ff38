//! The logistic function `1 / (1 + e^-x)`, element-wise: EfficientNet's SiLU and
//! squeeze-and-excitation gates are built from it.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::host::{Elementwise, HostOp};
use super::{
    Activation, At, Fit, Forward, HostBuild, Inputs, Kind, NodeWriter, Plan, See, Shape,
    WriteError,
};
use crate::host::InferError;

pub type Module = burn::nn::Sigmoid;

/// The logistic function `1 / (1 + e^-x)`, element-wise: EfficientNet's SiLU and
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sigmoid {}

impl Plan for Sigmoid {
    type Kind = Self;

    fn resolve(self, _input: Shape) -> Result<Self, Fit> {
        Ok(self)
    }

    fn of(kind: Self) -> Self {
        kind
    }

    fn template() -> Self {
        Self {}
    }
}

impl Kind for Sigmoid {
    const TYPE: &'static str = "sigmoid";
    type Module = Module;

    fn output(&self, inputs: Inputs<'_>) -> Result<Shape, Fit> {
        Ok(inputs[0].1)
    }

    fn module(&self, _at: &At, _device: &Device) -> Module {
        Module::new()
    }

    fn host(&self, _at: &At, _build: &mut HostBuild) -> Result<Box<dyn HostOp>, InferError> {
        Ok(Box::new(Elementwise(Self::TYPE, |v: f32| 1.0 / (1.0 + (-v).exp()))))
    }

    fn write(
        &self,
        at: &At,
        g: &mut dyn NodeWriter,
        xs: &[String],
        out: String,
    ) -> Result<String, WriteError> {
        Ok(g.node("Sigmoid", at.name, &[&xs[0]], out, vec![]))
    }

    fn read_from() -> Option<&'static str> {
        Some("Sigmoid")
    }
}

impl Forward for Module {
    fn forward(&self, inputs: Vec<Activation>, _see: See<'_>) -> Activation {
        // any shape, element-wise
        Activation::single(inputs).map(|t| self.forward(t), |t| self.forward(t), |t| self.forward(t))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::infer::net::Net;
    use crate::host::ops::{Act, Features};
    use crate::model::{Network, StackConfig};

    /// The definition: `1 / (1 + e^-x)`.
    fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    const XS: [f32; 5] = [-20.0, -1.5, 0.0, 0.5, 8.0];

    /// A network that reads a sigmoid layer: flatten, dense 6, sigmoid, dense 10.
    fn stack() -> StackConfig {
        toml::from_str(
            r#"
            input = [1, 3, 3]
            [[layers]]
            type = "flatten"
            [[layers]]
            type = "linear"
            out = 6
            [[layers]]
            name = "gate"
            type = "sigmoid"
            [[layers]]
            type = "linear"
            out = 10
            "#,
        )
        .unwrap()
    }

    #[test]
    fn a_plan_writes_it_as_sigmoid_and_its_shape_is_its_input() {
        let layers = stack().resolve(Some(10)).unwrap();
        let gate = &layers[2];
        assert_eq!(gate.kind.type_name(), "sigmoid");
        assert_eq!((gate.input, gate.output), (Shape::Flat(6), Shape::Flat(6)));
        assert_eq!(gate.parameter_count(), 0);
        let text = toml::to_string(&stack()).unwrap();
        assert!(text.contains("type = \"sigmoid\""), "{text}");
    }

    #[test]
    fn burn_forward_follows_the_definition() {
        let device = Device::default();
        let x = Tensor::<2>::from_data(TensorData::new(XS.to_vec(), [1, 5]), &device);
        let y = Forward::forward(&Module::new(), vec![Activation::Flat(x)], &mut |_| {});
        let y: Vec<f32> = y.flat().into_data().iter::<f32>().collect();
        for (x, y) in XS.iter().zip(&y) {
            assert!((y - sigmoid(*x)).abs() < 1e-6, "sigmoid({x}) = {y}");
        }
    }

    #[test]
    fn host_operation_follows_the_definition() {
        let op = Sigmoid {}.host(
            &At {
                name: "gate",
                input: Shape::Flat(5),
                output: Shape::Flat(5),
            },
            &mut HostBuild::new(&[], Vec::new(), &[], false),
        );
        let x = Act::Features(Features {
            data: XS.to_vec(),
            f: 5,
            n: 1,
            tokens: 1,
        });
        let Act::Features(y) = op.unwrap().run(vec![x]) else {
            panic!("features in, features out");
        };
        for (x, y) in XS.iter().zip(&y.data) {
            assert_eq!(*y, sigmoid(*x));
        }
    }

    /// The trained network, its host inference and its ONNX export read back agree.
    #[test]
    fn burn_host_and_onnx_round_trip_give_the_same_logits() {
        let device = Device::default();
        let stack = stack();
        let network = Network::new(&stack, 10, &device).unwrap();
        let params = network.read_params();
        let images: Vec<f32> = (0..18).map(|i| (i as f32 * 0.37).sin()).collect();
        let burn: Vec<f32> = network
            .forward(Tensor::<4>::from_data(
                TensorData::new(images.clone(), [2, 1, 3, 3]),
                &device,
            ))
            .into_data()
            .iter::<f32>()
            .collect();
        let host = Net::build(&stack, &params, &[], false).unwrap();
        let bytes = crate::onnx::to_onnx(&stack, &params).unwrap();
        let model = crate::onnx::import_bytes(&bytes, std::path::Path::new("gate.onnx")).unwrap();
        assert!(
            model.stack.layers.iter().any(|l| l.config.type_name() == "sigmoid"),
            "{:?}",
            model.stack.layers
        );
        let imported = Net::build(&model.stack, &model.params, &[], false).unwrap();
        for other in [host.forward(&images, 2), imported.forward(&images, 2)] {
            assert_eq!(other.len(), burn.len());
            for (a, b) in burn.iter().zip(&other) {
                assert!((a - b).abs() < 1e-5, "{a} against {b}");
            }
        }
    }
}
