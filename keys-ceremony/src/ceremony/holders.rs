//! Who holds each key, in holder order: the order the keys were given on the command line at
//! `init`, `rotate-root` and `resign`. Every listing of keys (signed by, not yet signed by,
//! missing) follows that order, so it reads like the ceremony's own roster.
//!
//! `ceremony.json` stores the holders as an ordered list (`tufa-ceremony/2`); the key-id map of
//! `tufa-ceremony/1` is still read, its keys ordered by holder name (what the order falls back
//! to for any key without a recorded position).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tufa_tuf::KeyId;

use crate::source::short;

/// One key and the name of its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub keyid: KeyId,
    pub holder: String,
}

/// Key holders in holder order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "HoldersJson", into = "Vec<Holder>")]
pub struct Holders(Vec<Holder>);

/// Both layouts of `holders` in ceremony.json.
#[derive(Deserialize)]
#[serde(untagged)]
enum HoldersJson {
    /// `tufa-ceremony/2`: `[{"keyid", "holder"}, …]` in holder order.
    Ordered(Vec<Holder>),
    /// `tufa-ceremony/1`: `{keyid: holder}`.
    Map(BTreeMap<KeyId, String>),
}

impl From<HoldersJson> for Holders {
    fn from(j: HoldersJson) -> Self {
        match j {
            HoldersJson::Ordered(list) => {
                let mut h = Self::default();
                for e in list {
                    h.insert(e.keyid, &e.holder);
                }
                h
            }
            HoldersJson::Map(map) => {
                let mut list: Vec<Holder> = map
                    .into_iter()
                    .map(|(keyid, holder)| Holder { keyid, holder })
                    .collect();
                list.sort_by(|a, b| (&a.holder, a.keyid).cmp(&(&b.holder, b.keyid)));
                Self(list)
            }
        }
    }
}

impl From<Holders> for Vec<Holder> {
    fn from(h: Holders) -> Self {
        h.0
    }
}

impl Holders {
    /// Records `holder` for `keyid`: appended when new (its position is the order of this
    /// call); a known key keeps its position and takes the new name.
    pub fn insert(&mut self, keyid: KeyId, holder: &str) {
        match self.0.iter_mut().find(|e| e.keyid == keyid) {
            Some(e) => holder.clone_into(&mut e.holder),
            None => self.0.push(Holder {
                keyid,
                holder: holder.to_owned(),
            }),
        }
    }

    pub fn get(&self, keyid: &KeyId) -> Option<&str> {
        self.0
            .iter()
            .find(|e| &e.keyid == keyid)
            .map(|e| e.holder.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Holder> {
        self.0.iter()
    }

    /// The holder's name, or `(unknown holder)`.
    pub fn name(&self, keyid: &KeyId) -> String {
        self.get(keyid).unwrap_or("(unknown holder)").to_owned()
    }

    /// `alice 0123456789abcdef`, or just the short key id when the holder is unknown.
    pub fn who(&self, keyid: &KeyId) -> String {
        match self.get(keyid) {
            Some(h) => format!("{h} {}", short(keyid)),
            None => short(keyid),
        }
    }

    /// Sorts key ids into holder order: recorded positions first, then by holder name (and key
    /// id) for keys without one.
    pub fn sort(&self, ids: &mut [KeyId]) {
        ids.sort_by_cached_key(|id| {
            let position = self.0.iter().position(|e| &e.keyid == id);
            (
                position.unwrap_or(usize::MAX),
                self.get(id).map(str::to_owned),
                *id,
            )
        });
    }

    /// `ids` in holder order.
    pub fn sorted(&self, ids: impl IntoIterator<Item = KeyId>) -> Vec<KeyId> {
        let mut v: Vec<KeyId> = ids.into_iter().collect();
        self.sort(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> KeyId {
        KeyId::from_bytes([n; 32])
    }

    #[test]
    fn holder_order_is_insertion_order_and_old_maps_still_read() {
        let mut h = Holders::default();
        h.insert(id(9), "zoe");
        h.insert(id(1), "adam");
        h.insert(id(5), "mia");
        h.insert(id(9), "zoe b");
        assert_eq!(
            h.sorted([id(5), id(1), id(9), id(7)]),
            [id(9), id(1), id(5), id(7)]
        );
        assert_eq!(h.name(&id(9)), "zoe b");

        let json = serde_json::to_string(&h).unwrap();
        assert!(json.starts_with('['), "{json}");
        assert_eq!(serde_json::from_str::<Holders>(&json).unwrap(), h);

        // tufa-ceremony/1: a map; falls back to holder name order.
        let old = format!(
            r#"{{"{}": "zoe", "{}": "adam", "{}": "mia"}}"#,
            id(1),
            id(2),
            id(3)
        );
        let h: Holders = serde_json::from_str(&old).unwrap();
        assert_eq!(h.sorted([id(1), id(2), id(3)]), [id(2), id(3), id(1)]);
    }
}
