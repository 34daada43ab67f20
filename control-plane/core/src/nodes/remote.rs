//! The nodes other replicas hold, as each last published them: read here, owned there.

use std::collections::BTreeMap;

use super::{Node, Nodes, Session};

impl Nodes {
    /// Replaces what replica `replica` holds with `nodes` (an empty map: it holds none, or
    /// it is gone). Returns the nodes connected there now that were not connected anywhere
    /// this model knew of before.
    pub fn set_remote(&mut self, replica: &str, nodes: BTreeMap<String, Node>) -> Vec<String> {
        let nodes: BTreeMap<String, Node> = nodes
            .into_iter()
            .map(|(id, mut node)| {
                node.id.clone_from(&id);
                node.session = node.connected.then(Session::default);
                (id, node)
            })
            .collect();
        self.remote_connected.retain(|_, holder| holder != replica);
        let mut joined = Vec::new();
        for node in nodes.values().filter(|n| n.connected) {
            let here = self.nodes.get(&node.id).is_some_and(|n| n.connected);
            let before = self.remote_connected.contains_key(&node.id);
            if !here && !before && !self.was_remote(replica, &node.id) {
                joined.push(node.id.clone());
            }
            self.remote_connected
                .insert(node.id.clone(), replica.to_string());
        }
        if nodes.is_empty() {
            self.remote.remove(replica);
        } else {
            self.remote.insert(replica.to_string(), nodes);
        }
        joined
    }

    fn was_remote(&self, replica: &str, id: &str) -> bool {
        self.remote
            .get(replica)
            .and_then(|nodes| nodes.get(id))
            .is_some_and(|n| n.connected)
    }

    /// The nodes other replicas hold, by replica.
    pub fn remote(&self) -> &BTreeMap<String, BTreeMap<String, Node>> {
        &self.remote
    }
}
