//! The distinct values of each attribute key among some records: what a block document lists
//! as `key=value` terms (or, for a key with too many values, as "has many values").
//!
//! A block builder collects them from the records' stored attribute JSON; the span and log
//! decoders collect them from the OTLP key-values they read anyway, once per export
//! ([`AttributeValues::into_owned`]), so the flusher's block of a row group is the union of the
//! values of the exports its rows came from ([`AttributeValues::absorb`]) instead of every
//! record's attribute JSON parsed again. The union may list a value that only rows of another
//! row group hold (an export whose rows the sort split between row groups): a block may list
//! more than its rows hold, never less, since a query checks each row of the blocks it reads.

use std::borrow::Cow;

use foldhash::{HashMap, HashSet};

/// Attribute values longer than this are not indexed as `key=value` terms (rows still hold
/// them, and a query on them falls back to scanning).
const MAX_INDEXED_ATTR: usize = 256;

/// A key with more distinct values than this in one block (ids, urls) is indexed as "has
/// many values" (`attr_overflow`) instead of value by value: such values would make the index
/// larger than the data and prune nothing.
const MAX_VALUES_PER_KEY: usize = 32;

/// Distinct values per attribute key; a key maps to `None` once it has too many (or too long)
/// values to list. Values borrow from the records they were read from (`'a`) wherever no
/// unescaping or formatting was needed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AttributeValues<'a> {
    keys: HashMap<Cow<'a, str>, Option<HashSet<Cow<'a, str>>>>,
}

impl<'a> AttributeValues<'a> {
    /// Notes one attribute: `text` is its value as queries compare it (a string unquoted,
    /// anything else as compact JSON).
    pub fn note(&mut self, key: Cow<'a, str>, text: Cow<'a, str>) {
        let slot = self
            .keys
            .entry(key)
            .or_insert_with(|| Some(HashSet::default()));
        note_in(slot, text);
    }

    /// [`AttributeValues::note`] with the value's text worked out only when the key still
    /// lists its values (the decoders' path: most values of an overflowing key are never
    /// formatted).
    pub fn note_with(&mut self, key: &'a str, text: impl FnOnce() -> Cow<'a, str>) {
        match self.keys.get_mut(key) {
            Some(None) => {}
            Some(slot) => note_in(slot, text()),
            None => self.note(Cow::Borrowed(key), text()),
        }
    }

    /// Adds every key and value of `other`, borrowing them.
    pub fn absorb(&mut self, other: &'a AttributeValues<'_>) {
        for (key, values) in &other.keys {
            match values {
                Some(values) => {
                    for value in values {
                        self.note(Cow::Borrowed(key.as_ref()), Cow::Borrowed(value.as_ref()));
                    }
                }
                None => {
                    self.keys.insert(Cow::Borrowed(key.as_ref()), None);
                }
            }
        }
    }

    /// The same values owning their text, to outlive the request they were read from.
    pub fn into_owned(self) -> AttributeValues<'static> {
        let owned = |text: Cow<'a, str>| Cow::Owned(text.into_owned());
        AttributeValues {
            keys: self
                .keys
                .into_iter()
                .map(|(key, values)| {
                    (
                        owned(key),
                        values.map(|values| values.into_iter().map(owned).collect()),
                    )
                })
                .collect(),
        }
    }

    /// About the bytes the keys and values hold (text and table entries), for memory
    /// accounting: an export's values live as long as its batch in the memtable.
    pub fn heap_bytes(&self) -> usize {
        const ENTRY: usize = std::mem::size_of::<Cow<'static, str>>() + 8;
        self.keys
            .iter()
            .map(|(key, values)| {
                let values: usize = values.iter().flatten().map(|v| v.len() + ENTRY).sum();
                key.len() + ENTRY + values
            })
            .sum()
    }

    /// Each key with its values, or `None` for a key with too many to list.
    pub fn into_entries(
        self,
    ) -> impl Iterator<Item = (Cow<'a, str>, Option<HashSet<Cow<'a, str>>>)> {
        self.keys.into_iter()
    }
}

/// Adds `text` to a key's values, or marks the key as having too many.
fn note_in<'a>(slot: &mut Option<HashSet<Cow<'a, str>>>, text: Cow<'a, str>) {
    let Some(values) = slot else { return };
    if values.contains(&text) {
        return;
    }
    if text.len() > MAX_INDEXED_ATTR || values.len() >= MAX_VALUES_PER_KEY {
        *slot = None;
    } else {
        values.insert(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(v: &AttributeValues) -> Vec<(String, Option<Vec<String>>)> {
        let mut out: Vec<_> = v
            .clone()
            .into_entries()
            .map(|(k, values)| {
                let values = values.map(|vs| {
                    let mut vs: Vec<String> = vs.into_iter().map(Cow::into_owned).collect();
                    vs.sort();
                    vs
                });
                (k.into_owned(), values)
            })
            .collect();
        out.sort();
        out
    }

    /// Values are listed up to the limits; a long value or one too many marks the key as
    /// overflowing, and `note_with` then never formats the value.
    #[test]
    fn limits_and_lazy_text() {
        let mut v = AttributeValues::default();
        for i in 0..MAX_VALUES_PER_KEY + 1 {
            v.note(Cow::Borrowed("id"), Cow::Owned(i.to_string()));
        }
        v.note(Cow::Borrowed("route"), Cow::Borrowed("/a"));
        v.note(Cow::Borrowed("route"), Cow::Borrowed("/a"));
        v.note(
            Cow::Borrowed("sql"),
            Cow::Owned("x".repeat(MAX_INDEXED_ATTR + 1)),
        );
        v.note_with("id", || {
            panic!("an overflowing key's value is not formatted")
        });
        v.note_with("route", || Cow::Borrowed("/b"));
        assert_eq!(
            listed(&v),
            [
                ("id".to_string(), None),
                ("route".to_string(), Some(vec!["/a".into(), "/b".into()])),
                ("sql".to_string(), None),
            ]
        );
    }

    /// The union of two exports' values is what noting all their records gives.
    #[test]
    fn absorbing_gives_the_union() {
        let records = [("k", "1"), ("k", "2"), ("j", "x"), ("k", "3")];
        let mut whole = AttributeValues::default();
        let (mut first, mut second) = (AttributeValues::default(), AttributeValues::default());
        for (i, (k, val)) in records.iter().enumerate() {
            whole.note(Cow::Borrowed(k), Cow::Borrowed(val));
            let part = if i < 2 { &mut first } else { &mut second };
            part.note_with(k, || Cow::Borrowed(val));
        }
        let (first, second) = (first.into_owned(), second.into_owned());
        let entry = std::mem::size_of::<Cow<str>>() + 8;
        assert_eq!(
            first.heap_bytes(),
            "k12".len() + 3 * entry,
            "one key, two values"
        );
        let mut union = AttributeValues::default();
        union.absorb(&first);
        union.absorb(&second);
        assert_eq!(listed(&union), listed(&whole));
    }
}
