use super::*;
use crate::layers::{Conv2d, Linear, window_out};
use crate::prune::LayerShape;

fn parse(text: &str) -> StackConfig {
    toml::from_str(text).unwrap()
}

const SMALL: &str = r#"
input = [1, 28, 28]
[[layers]]
type = "conv2d"
name = "c1"
out = 8
kernel = 3
padding = 1
[[layers]]
type = "relu"
[[layers]]
type = "maxpool2d"
kernel = 2
[[layers]]
type = "flatten"
[[layers]]
type = "linear"
out = 10
"#;

#[test]
fn shapes_flow_through_the_stack_and_unnamed_layers_get_type_and_position() {
    let layers = parse(SMALL).resolve(Some(10)).unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["c1", "relu1", "maxpool2d2", "flatten3", "linear4"]);
    assert_eq!(layers[0].output, Shape::Image { c: 8, h: 28, w: 28 });
    assert_eq!(layers[2].output, Shape::Image { c: 8, h: 14, w: 14 });
    assert_eq!(layers[3].output, Shape::Flat(8 * 14 * 14));
    let specs = parse(SMALL).layer_specs(Some(10)).unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].shape, LayerShape::conv2d(8, 1, 3, 3));
    assert_eq!(specs[1].shape, LayerShape::linear(10, 1568));
    assert!(specs[1].output && !specs[0].output);
}

#[test]
fn strides_and_pools_follow_pytorchs_floor() {
    assert_eq!(window_out(28, 5, 1, 2), Some(28));
    assert_eq!(window_out(28, 3, 2, 1), Some(14));
    assert_eq!(window_out(7, 2, 2, 0), Some(3));
    assert_eq!(window_out(2, 3, 1, 0), None);
}

#[test]
fn a_layer_that_does_not_fit_is_an_error_naming_it_and_both_shapes() {
    let mut s = parse(SMALL);
    s.layers.remove(3); // no flatten before the linear layer
    let e = s.resolve(Some(10)).unwrap_err().to_string();
    assert!(
        e.contains("linear3") && e.contains("[8, 14, 14]") && e.contains("flat"),
        "{e}"
    );
    let mut s = parse(SMALL);
    s.layers[4] = Layer::new(Linear::new(7));
    let e = s.resolve(Some(10)).unwrap_err().to_string();
    assert!(e.contains("[7]") && e.contains("10 classes"), "{e}");
    let mut s = parse(SMALL);
    s.layers[0] = Layer::named("big", conv(4, 40, 0));
    let e = s.resolve(Some(10)).unwrap_err().to_string();
    assert!(e.contains("big") && e.contains("[1, 28, 28]"), "{e}");
    let mut s = parse(SMALL);
    s.layers[2] = Layer::named("c1", conv(4, 1, 0));
    assert_eq!(
        s.resolve(Some(10)),
        Err(StackError::DuplicateName("c1".into()))
    );
    let s = StackConfig {
        input: [1, 28, 28],
        layers: vec![],
    };
    assert_eq!(s.resolve(Some(10)), Err(StackError::Empty));
    // sizes no machine could train are errors, not attempts
    let mut s = parse(SMALL);
    s.layers[4] = Layer::new(Linear::new(usize::MAX));
    let e = s.resolve(Some(10)).unwrap_err().to_string();
    assert!(e.contains("linear4") && e.contains("more than"), "{e}");
    let mut s = parse(SMALL);
    s.layers[0] = Layer::new(conv(8, 3, usize::MAX));
    assert!(s.resolve(Some(10)).is_err());
}

#[test]
fn stacks_round_trip_through_toml() {
    let s = parse(SMALL);
    let text = toml::to_string(&s).unwrap();
    assert_eq!(parse(&text), s);
    assert!(!text.contains("stride"), "defaults are not written: {text}");
}

fn conv(out: usize, kernel: usize, padding: usize) -> Conv2d {
    Conv2d {
        padding,
        ..Conv2d::new(out, kernel)
    }
}

/// Two residual blocks on 8 channels: the second written once and repeated.
const RESIDUAL: &str = r#"
input = [1, 8, 8]
[[layers]]
type = "conv2d"
name = "stem"
out = 8
kernel = 3
padding = 1
bias = false
[[layers]]
type = "relu"
name = "stem_out"
[[layers]]
type = "repeat"
times = 2
layers = [
  { type = "conv2d", name = "blocks.{i}.c1", out = 8, kernel = 3, padding = 1, bias = false },
  { type = "batchnorm2d", name = "blocks.{i}.b1" },
  { type = "add", name = "blocks.{i}.add", inputs = ["blocks.{i}.b1", "{input}"] },
  { type = "relu", name = "blocks.{i}.out" },
]
[[layers]]
type = "global_avgpool"
[[layers]]
type = "linear"
name = "fc"
out = 10
"#;

#[test]
fn repeats_are_written_out_and_merges_read_the_layers_they_name() {
    let stack = parse(RESIDUAL);
    let layers = stack.resolve(Some(10)).unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stem",
            "stem_out",
            "blocks.0.c1",
            "blocks.0.b1",
            "blocks.0.add",
            "blocks.0.out",
            "blocks.1.c1",
            "blocks.1.b1",
            "blocks.1.add",
            "blocks.1.out",
            "global_avgpool10",
            "fc"
        ]
    );
    // each add reads its block's norm and the block's input: the layer before the copy
    assert_eq!(layers[4].sources, [Source::Layer(3), Source::Layer(1)]);
    assert_eq!(layers[8].sources, [Source::Layer(7), Source::Layer(5)]);
    assert_eq!(layers[0].sources, [Source::Input]);
    assert_eq!(layers[10].output, Shape::Flat(8));
    let params: Vec<String> = layers
        .iter()
        .flat_map(|l| l.parameters())
        .map(|(k, _)| k)
        .collect();
    assert!(params.contains(&"blocks.1.c1.weight".to_string()));
    assert!(!params.contains(&"stem.bias".to_string()), "bias = false");
    let specs = stack.layer_specs(Some(10)).unwrap();
    let spec_names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(spec_names, ["stem", "blocks.0.c1", "blocks.1.c1", "fc"]);
    // a plan with a repeat reads back as written
    let text = toml::to_string(&stack).unwrap();
    assert_eq!(parse(&text), stack, "{text}");
}

#[test]
fn graph_errors_name_the_layer_its_inputs_and_their_shapes() {
    // an add of an 8-channel and a 4-channel image
    let text = RESIDUAL.replace(
        r#"name = "blocks.{i}.c1", out = 8"#,
        r#"name = "blocks.{i}.c1", out = 4"#,
    );
    let e = parse(&text).resolve(Some(10)).unwrap_err().to_string();
    assert!(
        e.contains("blocks.0.add")
            && e.contains("blocks.0.b1 [4, 8, 8]")
            && e.contains("stem_out [8, 8, 8]"),
        "{e}"
    );
    let text = RESIDUAL.replace(r#""{input}""#, r#""nowhere""#);
    let e = parse(&text).resolve(Some(10)).unwrap_err();
    assert_eq!(
        e,
        StackError::UnknownInput {
            layer: "blocks.0.add".into(),
            input: "nowhere".into()
        }
    );
    // a layer may only read layers before it: no cycles
    let text = RESIDUAL.replace(r#""{input}""#, r#""blocks.{i}.out""#);
    assert!(matches!(
        parse(&text).resolve(Some(10)),
        Err(StackError::UnknownInput { .. })
    ));
    // a branch whose output nothing reads
    let mut s = parse(SMALL);
    s.layers
        .insert(1, Layer::named("dead", conv(2, 1, 0)).reading("input"));
    s.layers[2].input = Some("c1".into());
    assert_eq!(s.resolve(Some(10)), Err(StackError::Unused("dead".into())));
    let text = RESIDUAL.replace("times = 2", "times = 0");
    let e = parse(&text).resolve(Some(10)).unwrap_err().to_string();
    assert!(e.contains("repeat") && e.contains("times"), "{e}");
    let text = RESIDUAL.replace("times = 2", "times = 100000000");
    let e = parse(&text).resolve(Some(10)).unwrap_err().to_string();
    assert!(e.contains("at most") || e.contains("more than"), "{e}");
}

#[test]
fn tokens_attention_and_concat_follow_their_shape_rules() {
    let vit = r#"
input = [1, 28, 28]
[[layers]]
type = "conv2d"
name = "patch"
out = 16
kernel = 4
stride = 4
[[layers]]
type = "tokens"
[[layers]]
type = "position"
name = "pos"
[[layers]]
type = "layernorm"
name = "norm1"
[[layers]]
type = "attention"
name = "attn"
heads = 4
[[layers]]
type = "linear"
name = "mlp"
out = 32
[[layers]]
type = "concat"
inputs = ["mlp", "pos"]
[[layers]]
type = "mean_tokens"
[[layers]]
type = "linear"
name = "fc"
out = 10
"#;
    let layers = parse(vit).resolve(Some(10)).unwrap();
    assert_eq!(layers[1].output, Shape::Tokens { n: 49, d: 16 });
    assert_eq!(layers[5].output, Shape::Tokens { n: 49, d: 32 });
    assert_eq!(layers[6].output, Shape::Tokens { n: 49, d: 48 });
    assert_eq!(layers[7].output, Shape::Flat(48));
    let params = layers[2].parameters();
    assert_eq!(params, [("pos".to_string(), vec![1, 49, 16])]);
    let specs = parse(vit).layer_specs(Some(10)).unwrap();
    let shapes: Vec<(&str, Vec<usize>)> = specs
        .iter()
        .map(|s| (s.name.as_str(), s.shape.dims()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("patch", vec![16, 1, 4, 4]),
            ("attn.in_proj", vec![48, 16]),
            ("attn.out_proj", vec![16, 16]),
            ("mlp", vec![32, 16]),
            ("fc", vec![10, 48]),
        ]
    );
    let keys: Vec<String> = layers[4].parameters().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "attn.in_proj_weight",
            "attn.in_proj_bias",
            "attn.out_proj.weight",
            "attn.out_proj.bias"
        ]
    );
    let e = parse(&vit.replace("heads = 4", "heads = 3"))
        .resolve(Some(10))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("attn") && e.contains("heads = 3") && e.contains("16"),
        "{e}"
    );
    // attention on an image is a mismatch naming what it needs
    let e = parse(&vit.replace("type = \"tokens\"", "type = \"relu\""))
        .resolve(Some(10))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokens"), "{e}");
    // concatenating tokens with an image
    let e = parse(&vit.replace(r#"["mlp", "pos"]"#, r#"["mlp", "patch"]"#))
        .resolve(Some(10))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("concatenates")
            && e.contains("mlp [49 tokens, 32]")
            && e.contains("patch [16, 7, 7]"),
        "{e}"
    );
}

#[test]
fn grouped_convolutions_divide_their_channels() {
    let mut s = parse(SMALL);
    s.layers.insert(
        1,
        Layer::named(
            "depthwise",
            Conv2d {
                padding: 1,
                groups: 8,
                ..Conv2d::new(8, 3)
            },
        ),
    );
    let specs = s.layer_specs(Some(10)).unwrap();
    assert_eq!(specs[1].shape, LayerShape::conv2d(8, 1, 3, 3));
    if let LayerConfig::Conv2d(c) = &mut s.layers[1].config {
        c.groups = 3;
    }
    let e = s.resolve(Some(10)).unwrap_err().to_string();
    assert!(e.contains("depthwise") && e.contains("groups = 3"), "{e}");
}

/// A group's members by name: producers, readers with their spans, carriers.
fn members(
    stack: &StackConfig,
    group: &crate::prune::UnitGroup,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let specs = stack.layer_specs(None).unwrap();
    let name = |w: usize| specs[w].name.clone();
    (
        group.producers.iter().map(|m| name(m.weight)).collect(),
        group
            .readers
            .iter()
            .map(|r| format!("{} /{}", name(r.weight), r.span))
            .collect(),
        group.carriers.clone(),
    )
}

#[test]
fn resnet20s_groups_tie_each_stage_through_its_skips() {
    let stack = crate::model::ModelKind::Resnet20.stack().unwrap();
    let groups = stack.unit_groups().unwrap();
    assert_eq!(
        groups.len(),
        3 + 9,
        "three residual streams and one inside each block"
    );
    let find = |first: &str| {
        groups
            .iter()
            .map(|g| members(&stack, g))
            .find(|m| m.0[0] == first)
            .unwrap_or_else(|| panic!("no group starting at {first}"))
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        find("stem"),
        (
            strings(&["stem", "blocks.0.c2", "blocks.1.c2", "blocks.2.c2"]),
            strings(&[
                "blocks.0.c1 /9",
                "blocks.1.c1 /9",
                "blocks.2.c1 /9",
                "blocks.3.c1 /9",
                "blocks.3.short.0 /1"
            ]),
            strings(&["bn", "blocks.0.b2", "blocks.1.b2", "blocks.2.b2"]),
        )
    );
    assert_eq!(
        find("blocks.3.c2").0,
        strings(&[
            "blocks.3.c2",
            "blocks.3.short.0",
            "blocks.4.c2",
            "blocks.5.c2"
        ])
    );
    assert_eq!(
        find("blocks.6.c2"),
        (
            strings(&[
                "blocks.6.c2",
                "blocks.6.short.0",
                "blocks.7.c2",
                "blocks.8.c2"
            ]),
            strings(&["blocks.7.c1 /9", "blocks.8.c1 /9", "fc /1"]),
            strings(&[
                "blocks.6.b2",
                "blocks.6.short.1",
                "blocks.7.b2",
                "blocks.8.b2"
            ]),
        )
    );
    assert_eq!(
        find("blocks.4.c1"),
        (
            strings(&["blocks.4.c1"]),
            strings(&["blocks.4.c2 /9"]),
            strings(&["blocks.4.b1"]),
        )
    );
    assert!(groups.iter().all(|g| !g.producers.is_empty()));
    // the classifier's outputs are the classes: never a group's
    let fc = stack.layer_specs(None).unwrap().len() - 1;
    assert!(groups.iter().all(|g| !g.produced_by(fc)));
}

#[test]
fn a_chain_flattened_into_a_dense_layer_reads_each_channel_as_a_span_of_positions() {
    let groups = parse(SMALL).unit_groups().unwrap();
    // c1's 8 channels, pooled to 14 x 14, flattened: the linear layer reads 196 columns each
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].producers, [crate::prune::Member::single(0)]);
    assert_eq!(
        groups[0].readers,
        [crate::prune::Member {
            weight: 1,
            offset: 0,
            span: 196
        }]
    );
    assert_eq!(groups[0].channels, 8);
}

#[test]
fn vit_tinys_residual_stream_is_fixed_by_its_layer_norms_and_its_mlps_are_groups() {
    use crate::prune::GroupKind;
    let stack = crate::model::ModelKind::VitTiny.stack().unwrap();
    let groups = stack.unit_groups().unwrap();
    let (channels, heads): (Vec<_>, Vec<_>) =
        groups.iter().partition(|g| g.kind == GroupKind::Channels);
    let found: Vec<_> = channels.iter().map(|g| members(&stack, g)).collect();
    assert_eq!(found.len(), 4, "{found:?}");
    for (i, (producers, readers, carriers)) in found.iter().enumerate() {
        assert_eq!(producers, &[format!("encoder.layers.{i}.linear1")]);
        assert_eq!(readers, &[format!("encoder.layers.{i}.linear2 /1")]);
        assert!(carriers.is_empty());
    }
    assert!(channels.iter().all(|g| g.channels == 128));
    // each layer's heads: 16 rows of each of Q, K and V, 16 columns of the output
    assert_eq!(heads.len(), 4);
    for (i, g) in heads.iter().enumerate() {
        let (producers, readers, _) = members(&stack, g);
        let attn = format!("encoder.layers.{i}.self_attn");
        assert_eq!(producers, vec![format!("{attn}.in_proj"); 3]);
        assert_eq!(readers, [format!("{attn}.out_proj /16")]);
        let offsets: Vec<usize> = g.producers.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [0, 64, 128]);
        assert_eq!((g.channels, g.producers[0].span), (4, 16));
    }
}
