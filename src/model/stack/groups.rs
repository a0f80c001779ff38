//! Which channels a network ties together: the channel groups of its graph, after
//! Torch-Pruning's dependency graph. Every layer output is a channel space; a convolution or
//! dense layer starts a new one, layers that work channel by channel (norms, activations,
//! pools, reshapes into tokens) pass theirs on, and an `add` makes its inputs' spaces one.
//! A group is the set of spaces an `add` tied (or a single one), with the weights that
//! write it and the weights that read it.

use crate::prune::{GroupKind, Member, UnitGroup};

use super::{LayerConfig, ResolvedLayer, Shape, Source};

/// How a layer's output holds a channel space: which space, and how many consecutive
/// values one channel spans along the features (`h * w` after flattening an image).
#[derive(Clone, Copy)]
struct View {
    space: usize,
    span: usize,
}

/// The spaces, joined by `add`s (union-find), with what each group may not lose.
struct Spaces {
    parent: Vec<usize>,
    /// A space that cannot lose channels: the network's input and output, or one a layer
    /// mixes in a way no mask can follow (a layer norm's statistics, a concatenation).
    fixed: Vec<bool>,
    channels: Vec<usize>,
}

impl Spaces {
    fn new_space(&mut self, channels: usize, fixed: bool) -> usize {
        self.parent.push(self.parent.len());
        self.fixed.push(fixed);
        self.channels.push(channels);
        self.parent.len() - 1
    }

    fn root(&mut self, mut s: usize) -> usize {
        while self.parent[s] != s {
            self.parent[s] = self.parent[self.parent[s]];
            s = self.parent[s];
        }
        s
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            self.parent[b] = a;
            self.fixed[a] |= self.fixed[b];
        }
    }

    fn fix(&mut self, s: usize) {
        let r = self.root(s);
        self.fixed[r] = true;
    }
}

/// The groups of resolved `layers` that pruning may shrink: the channel groups, in the
/// order of their first producer, then each attention layer's heads. Weights are numbered
/// as [`super::prunable_specs`] numbers them.
pub fn unit_groups(layers: &[ResolvedLayer]) -> Vec<UnitGroup> {
    let mut groups = tied_channels(layers);
    groups.extend(head_groups(layers));
    groups
}

/// Each attention layer's heads as a group: head `h` is rows `h * hd .. (h + 1) * hd` of
/// each of Q, K and V in the packed input projection, and the same columns of the output
/// projection.
fn head_groups(layers: &[ResolvedLayer]) -> Vec<UnitGroup> {
    let mut weight = 0;
    let mut groups = Vec::new();
    for l in layers {
        let count = l.prunable().len();
        if let Some((heads, hd)) = l.config.heads_of(l.input.channels()) {
            let inner = heads * hd;
            let rows = |offset| Member {
                weight,
                offset,
                span: hd,
            };
            groups.push(UnitGroup {
                kind: GroupKind::Heads,
                channels: heads,
                producers: vec![rows(0), rows(inner), rows(2 * inner)],
                readers: vec![Member {
                    weight: weight + 1,
                    offset: 0,
                    span: hd,
                }],
                carriers: Vec::new(),
            });
        }
        weight += count;
    }
    groups
}

/// The channel groups: channel spaces with their producers and readers.
fn tied_channels(layers: &[ResolvedLayer]) -> Vec<UnitGroup> {
    let mut spaces = Spaces {
        parent: Vec::new(),
        fixed: Vec::new(),
        channels: Vec::new(),
    };
    let input = View {
        space: spaces.new_space(layers.first().map_or(0, |l| l.input.channels()), true),
        span: 1,
    };
    // per space: producing weights, reading weights, carrying layers
    let mut producers: Vec<(usize, usize)> = Vec::new();
    let mut readers: Vec<(usize, Member)> = Vec::new();
    let mut carriers: Vec<(usize, String)> = Vec::new();
    let mut views: Vec<View> = Vec::with_capacity(layers.len());
    let mut weight = 0;
    for l in layers {
        let ins: Vec<View> = l
            .sources
            .iter()
            .map(|s| match s {
                Source::Input => input,
                Source::Layer(j) => views[*j],
            })
            .collect();
        let x = ins[0];
        let new_space = |spaces: &mut Spaces, fixed: bool| View {
            space: spaces.new_space(l.output.channels(), fixed),
            span: 1,
        };
        let out = match (&l.config, l.input) {
            (
                LayerConfig::Conv2d {
                    groups,
                    kernel,
                    out,
                    ..
                },
                Shape::Image { c, .. },
            ) => {
                let w = weight;
                weight += 1;
                if *groups == 1 {
                    readers.push((
                        x.space,
                        Member {
                            weight: w,
                            offset: 0,
                            span: kernel * kernel * x.span,
                        },
                    ));
                    let v = new_space(&mut spaces, false);
                    producers.push((v.space, w));
                    v
                } else if *groups == c && *out == c {
                    // depthwise: output channel i is input channel i
                    producers.push((x.space, w));
                    x
                } else {
                    spaces.fix(x.space);
                    new_space(&mut spaces, true)
                }
            }
            (LayerConfig::Linear { .. }, _) => {
                let w = weight;
                weight += 1;
                readers.push((
                    x.space,
                    Member {
                        weight: w,
                        offset: 0,
                        span: x.span,
                    },
                ));
                let v = new_space(&mut spaces, false);
                producers.push((v.space, w));
                v
            }
            (LayerConfig::Attention { .. }, _) => {
                // in_proj reads the tokens; out_proj writes a new space; the heads in
                // between are pruned as heads, not as channels
                readers.push((x.space, Member::single(weight)));
                let v = new_space(&mut spaces, false);
                producers.push((v.space, weight + 1));
                weight += 2;
                v
            }
            (LayerConfig::Batchnorm2d | LayerConfig::Position, _) => {
                carriers.push((x.space, l.name.clone()));
                x
            }
            (LayerConfig::Layernorm, _) => {
                // its mean and variance read every channel: a masked channel would still
                // count, so the channels it normalizes stay whole
                carriers.push((x.space, l.name.clone()));
                spaces.fix(x.space);
                x
            }
            (LayerConfig::Flatten, Shape::Image { h, w, .. }) => View {
                space: x.space,
                span: x.span * h * w,
            },
            (LayerConfig::Flatten, Shape::Tokens { .. }) => {
                spaces.fix(x.space);
                new_space(&mut spaces, true)
            }
            (LayerConfig::Add { .. }, _) => {
                for v in &ins[1..] {
                    spaces.join(x.space, v.space);
                }
                x
            }
            (LayerConfig::Concat { .. }, _) => {
                for v in &ins {
                    spaces.fix(v.space);
                }
                new_space(&mut spaces, true)
            }
            _ => x,
        };
        views.push(out);
    }
    if let Some(last) = views.last() {
        spaces.fix(last.space);
    }
    collect(&mut spaces, producers, readers, carriers)
}

/// The groups of the spaces that have producers and are not fixed, members by space.
fn collect(
    spaces: &mut Spaces,
    producers: Vec<(usize, usize)>,
    readers: Vec<(usize, Member)>,
    carriers: Vec<(usize, String)>,
) -> Vec<UnitGroup> {
    let mut groups: Vec<(usize, UnitGroup)> = Vec::new();
    for (space, w) in producers {
        let root = spaces.root(space);
        if spaces.fixed[root] {
            continue;
        }
        match groups.iter_mut().find(|(r, _)| *r == root) {
            Some((_, g)) => g.producers.push(Member::single(w)),
            None => groups.push((
                root,
                UnitGroup {
                    kind: GroupKind::Channels,
                    channels: spaces.channels[root],
                    producers: vec![Member::single(w)],
                    readers: Vec::new(),
                    carriers: Vec::new(),
                },
            )),
        }
    }
    for (space, r) in readers {
        let root = spaces.root(space);
        if let Some((_, g)) = groups.iter_mut().find(|(g, _)| *g == root) {
            g.readers.push(r);
        }
    }
    for (space, name) in carriers {
        let root = spaces.root(space);
        if let Some((_, g)) = groups.iter_mut().find(|(g, _)| *g == root) {
            g.carriers.push(name);
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}
