//! Which channels a network ties together, after Torch-Pruning's dependency graph: every
//! layer output is a channel space; a convolution or dense layer starts a new one, layers
//! that work channel by channel pass theirs on, and an `add` makes its inputs' spaces one.
//! Each kind says what it does to the spaces through [`crate::layers::Kind::channels`];
//! [`ChannelFlow`] keeps the spaces and, at the end, gives the groups pruning may shrink.

use crate::prune::{GroupKind, Member, UnitGroup};

/// How a layer's output holds a channel space: which space, and how many consecutive
/// values one channel spans along the features (`h * w` after flattening an image).
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub space: usize,
    pub span: usize,
}

/// The spaces of a network as its layers are walked, joined by `add`s (union-find), with
/// the weights that write, read and carry them, and the attention heads met on the way.
#[derive(Default)]
pub struct ChannelFlow {
    parent: Vec<usize>,
    /// A space that cannot lose channels: the network's input and output, or one a layer
    /// mixes in a way no mask can follow (a layer norm's statistics, a concatenation).
    fixed: Vec<bool>,
    channels: Vec<usize>,
    /// Per space: producing weights, reading weights, carrying layers.
    producers: Vec<(usize, usize)>,
    readers: Vec<(usize, Member)>,
    carriers: Vec<(usize, String)>,
    heads: Vec<UnitGroup>,
    /// The next prunable weight's number, as `prunable_specs` numbers them.
    weight: usize,
}

impl ChannelFlow {
    /// A new space of `channels`; `fixed` when it may not lose any.
    pub fn new_space(&mut self, channels: usize, fixed: bool) -> View {
        self.parent.push(self.parent.len());
        self.fixed.push(fixed);
        self.channels.push(channels);
        View {
            space: self.parent.len() - 1,
            span: 1,
        }
    }

    fn root(&mut self, mut s: usize) -> usize {
        while self.parent[s] != s {
            self.parent[s] = self.parent[self.parent[s]];
            s = self.parent[s];
        }
        s
    }

    /// Makes two spaces one (an `add`).
    pub fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            self.parent[b] = a;
            self.fixed[a] |= self.fixed[b];
        }
    }

    /// Keeps every channel of a space.
    pub fn fix(&mut self, s: usize) {
        let r = self.root(s);
        self.fixed[r] = true;
    }

    /// The next prunable weight's number; each call takes one.
    pub fn take_weight(&mut self) -> usize {
        self.weight += 1;
        self.weight - 1
    }

    /// Weight `w` writes the channels of `space`.
    pub fn produce(&mut self, space: usize, w: usize) {
        self.producers.push((space, w));
    }

    /// A weight reads the channels of `space` as `member` says.
    pub fn read(&mut self, space: usize, member: Member) {
        self.readers.push((space, member));
    }

    /// Layer `name` keeps a value per channel of `space` (a norm's, a position embedding's).
    pub fn carry(&mut self, space: usize, name: &str) {
        self.carriers.push((space, name.to_string()));
    }

    /// An attention layer's heads, pruned as heads.
    pub fn heads(&mut self, group: UnitGroup) {
        self.heads.push(group);
    }

    /// The groups pruning may shrink: the channel groups of the spaces that have
    /// producers and are not fixed, in the order of their first producer (the network's
    /// output, `last`, fixed), then the heads.
    pub fn finish(mut self, last: Option<View>) -> Vec<UnitGroup> {
        if let Some(last) = last {
            self.fix(last.space);
        }
        let mut groups: Vec<(usize, UnitGroup)> = Vec::new();
        for (space, w) in std::mem::take(&mut self.producers) {
            let root = self.root(space);
            if self.fixed[root] {
                continue;
            }
            match groups.iter_mut().find(|(r, _)| *r == root) {
                Some((_, g)) => g.producers.push(Member::single(w)),
                None => groups.push((
                    root,
                    UnitGroup {
                        kind: GroupKind::Channels,
                        channels: self.channels[root],
                        producers: vec![Member::single(w)],
                        readers: Vec::new(),
                        carriers: Vec::new(),
                    },
                )),
            }
        }
        for (space, r) in std::mem::take(&mut self.readers) {
            let root = self.root(space);
            if let Some((_, g)) = groups.iter_mut().find(|(g, _)| *g == root) {
                g.readers.push(r);
            }
        }
        for (space, name) in std::mem::take(&mut self.carriers) {
            let root = self.root(space);
            if let Some((_, g)) = groups.iter_mut().find(|(g, _)| *g == root) {
                g.carriers.push(name);
            }
        }
        let mut out: Vec<UnitGroup> = groups.into_iter().map(|(_, g)| g).collect();
        out.append(&mut self.heads);
        out
    }
}
