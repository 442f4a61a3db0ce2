//! Where the shared tier keeps things in Redis.
//!
//! Every key of a scope carries the same hash tag, `{b<bucket>}`, with the bucket taken from the
//! scope's digest, so Redis Cluster places a scope (its entries, its key set, the stream its
//! events go to and that stream's counter) on one shard, and the scripts that touch several of
//! them stay single-slot. Scopes spread over `buckets` tags, so more buckets spread them over
//! more shards.
//!
//! ```text
//! <ns>:{b<bucket>}:e:<exact key, hex>   hash: id (stream id of its put), e (entry)   PEXPIRE ttl
//! <ns>:{b<bucket>}:s:<scope digest, hex> set of the scope's entry keys                PEXPIRE ttl
//! <ns>:{b<bucket>}:events                stream of put / del / purge events          MAXLEN ~
//! <ns>:{b<bucket>}:n                     counter numbering the stream's events
//! ```

use crate::Key;
use paracache::Scope;

pub(crate) struct Layout {
    namespace: String,
    buckets: u16,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Layout {
    pub(crate) fn new(namespace: &str, buckets: u16) -> Layout {
        Layout {
            namespace: namespace.to_owned(),
            buckets,
        }
    }

    pub(crate) fn buckets(&self) -> u16 {
        self.buckets
    }

    pub(crate) fn bucket(&self, scope: &Scope) -> u16 {
        let d = scope.digest();
        u16::from_le_bytes([d[0], d[1]]) % self.buckets
    }

    fn tag(&self, bucket: u16) -> String {
        format!("{}:{{b{bucket}}}", self.namespace)
    }

    pub(crate) fn entry(&self, bucket: u16, key: &Key) -> String {
        format!("{}:e:{}", self.tag(bucket), hex(key))
    }

    pub(crate) fn scope_set(&self, bucket: u16, scope: &Scope) -> String {
        format!("{}:s:{}", self.tag(bucket), hex(&scope.digest()))
    }

    pub(crate) fn stream(&self, bucket: u16) -> String {
        format!("{}:events", self.tag(bucket))
    }

    pub(crate) fn counter(&self, bucket: u16) -> String {
        format!("{}:n", self.tag(bucket))
    }

    /// A SCAN pattern for every entry key of this namespace (namespaces are checked to hold no
    /// glob characters).
    pub(crate) fn entry_pattern(&self) -> String {
        format!("{}:{{b*}}:e:*", self.namespace)
    }

    /// The exact key an entry key names, if it is one of this layout's.
    pub(crate) fn parse_entry(&self, name: &[u8]) -> Option<Key> {
        let name = std::str::from_utf8(name).ok()?;
        let rest = name.strip_prefix(self.namespace.as_str())?;
        let (_, hex_key) = rest.rsplit_once(":e:")?;
        if hex_key.len() != 32 {
            return None;
        }
        let mut key = [0u8; 16];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex_key.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(key)
    }
}

/// Whether `ns` is usable as a key prefix: non-empty, and no character Redis's glob patterns or
/// hash tags would read.
pub(crate) fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 64
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact_key;

    /// What Redis Cluster hashes: the part between the first `{` and the next `}`.
    fn hash_tag(name: &str) -> &str {
        let open = name.find('{').unwrap();
        let close = open + name[open..].find('}').unwrap();
        &name[open + 1..close]
    }

    #[test]
    fn every_key_of_a_scope_shares_one_hash_tag() {
        let layout = Layout::new("pc", 16);
        for i in 0..50 {
            let scope = Scope::named(format!("tenant-{i}"));
            let b = layout.bucket(&scope);
            assert!(b < 16);
            let key = exact_key(&scope, "q");
            let names = [
                layout.entry(b, &key),
                layout.scope_set(b, &scope),
                layout.stream(b),
                layout.counter(b),
            ];
            for n in &names {
                assert_eq!(hash_tag(n), format!("b{b}"), "{n}");
            }
            assert_eq!(layout.parse_entry(names[0].as_bytes()), Some(key));
            assert_eq!(layout.parse_entry(names[1].as_bytes()), None);
        }
    }

    #[test]
    fn scopes_spread_over_the_buckets() {
        let layout = Layout::new("pc", 8);
        let mut seen = [false; 8];
        for i in 0..200 {
            seen[layout.bucket(&Scope::named(format!("t{i}"))) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn namespaces_with_pattern_characters_are_refused() {
        assert!(valid_namespace("paracache-prod_1.v2"));
        for bad in ["", "a*", "a{b}", "a:b", "a b", "a?", "a[b]"] {
            assert!(!valid_namespace(bad), "{bad}");
        }
    }
}
