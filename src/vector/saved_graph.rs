//! A scope's graph as a snapshot stores it, so a restart links its vectors back in milliseconds
//! instead of rebuilding the graph (about 70 s for dev-large's 93k questions on one core).
//!
//! Nodes are named by their entries' exact keys, not by slot: a restored cache numbers its slots
//! afresh, and entries that expired meanwhile are simply not there to link to.

use crate::key::Key;
use serde::{Deserialize, Serialize};

/// Layers a saved node may have (the graph's own limit).
pub(crate) const MAX_LAYERS: usize = 16;

/// Largest `m` a cache accepts; a saved graph claiming more is corrupt.
const MAX_M: u32 = 128;

/// One scope's graph: each node's key and its neighbours (node indices), layer 0 first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SavedGraph {
    /// The scope's encoding ([`crate::Scope::encoding`]).
    pub(crate) scope: Vec<u8>,
    /// Links per node above layer 0 when it was built (twice that on layer 0).
    pub(crate) m: u32,
    /// The node every search starts from.
    pub(crate) entry: u32,
    pub(crate) nodes: Vec<SavedNode>,
}

/// A graph node: `None` for a vector whose entry was already dead when saved (it routed searches,
/// but no record stands behind it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SavedNode {
    pub(crate) key: Option<Key>,
    pub(crate) layers: Vec<Vec<u32>>,
}

impl SavedGraph {
    /// Why these links could not have been written by a save, if they could not: every index in
    /// range, no list longer than its cap, no node linked to itself, every upper-layer neighbour
    /// present on that layer, the entry on the top layer.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if !(2..=MAX_M).contains(&self.m) {
            return Err("graph m out of range");
        }
        if self.nodes.len() > u32::MAX as usize {
            return Err("graph too large");
        }
        let entry = self
            .nodes
            .get(self.entry as usize)
            .ok_or("graph entry out of range")?;
        let top = entry.layers.len();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.layers.is_empty() || node.layers.len() > top || node.layers.len() > MAX_LAYERS {
                return Err("graph node with no layer, or above the entry's");
            }
            for (layer, list) in node.layers.iter().enumerate() {
                let cap = if layer == 0 { 2 * self.m } else { self.m };
                if list.len() > cap as usize {
                    return Err("graph neighbour list over its cap");
                }
                for &to in list {
                    let Some(other) = self.nodes.get(to as usize).filter(|_| to as usize != i)
                    else {
                        return Err("graph link out of range or to itself");
                    };
                    if other.layers.len() <= layer {
                        return Err("graph link to a node absent from that layer");
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(key: u8, layers: Vec<Vec<u32>>) -> SavedNode {
        SavedNode {
            key: Some([key; 16]),
            layers,
        }
    }

    fn triangle() -> SavedGraph {
        SavedGraph {
            scope: vec![1],
            m: 2,
            entry: 0,
            nodes: vec![
                node(0, vec![vec![1, 2], vec![1]]),
                node(1, vec![vec![0, 2], vec![0]]),
                node(2, vec![vec![0, 1]]),
            ],
        }
    }

    #[test]
    fn a_consistent_graph_passes() {
        assert_eq!(triangle().check(), Ok(()));
    }

    #[test]
    fn every_inconsistency_is_named() {
        type Spoil = fn(&mut SavedGraph);
        let cases: Vec<(Spoil, &str)> = vec![
            (|g| g.m = 0, "m out of range"),
            (|g| g.m = 1000, "m out of range"),
            (|g| g.entry = 3, "entry out of range"),
            (|g| g.entry = 2, "above the entry's"),
            (|g| g.nodes[0].layers.clear(), "no layer"),
            (
                |g| g.nodes[0].layers[0] = vec![1, 2, 1, 2, 1],
                "over its cap",
            ),
            (|g| g.nodes[0].layers[0] = vec![9], "out of range"),
            (|g| g.nodes[0].layers[0] = vec![0], "to itself"),
            (|g| g.nodes[0].layers[1] = vec![2], "absent from that layer"),
        ];
        for (spoil, why) in cases {
            let mut g = triangle();
            spoil(&mut g);
            let err = g.check().unwrap_err();
            assert!(err.contains(why), "{why}: got {err}");
        }
    }
}
