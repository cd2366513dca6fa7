//! Typed values attached to a context: metadata by key, extensions by type.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt;

/// Why a typed metadata read found nothing usable.
///
/// ```
/// use workflow_runtime::{MetadataError, WorkflowContext};
/// let ctx = WorkflowContext::new("Doc");
/// ctx.set_metadata("attempt", 3u32);
/// let err = ctx.try_metadata::<String>("attempt").unwrap_err();
/// assert!(matches!(err, MetadataError::WrongType { .. }));
/// assert_eq!(
///     err.to_string(),
///     r#"metadata "attempt" holds a u32, not a alloc::string::String"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataError {
    /// No value under this key.
    Missing {
        /// The key asked for.
        key: String,
    },
    /// A value of another type under this key.
    WrongType {
        /// The key asked for.
        key: String,
        /// The type asked for.
        expected: &'static str,
        /// The type stored.
        found: &'static str,
    },
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::Missing { key } => write!(f, "no metadata under {key:?}"),
            MetadataError::WrongType {
                key,
                expected,
                found,
            } => write!(f, "metadata {key:?} holds a {found}, not a {expected}"),
        }
    }
}

impl std::error::Error for MetadataError {}

struct Entry {
    value: Box<dyn Any + Send + Sync>,
    type_name: &'static str,
}

impl Entry {
    fn new<T: Any + Send + Sync>(value: T) -> Self {
        Entry {
            value: Box::new(value),
            type_name: std::any::type_name::<T>(),
        }
    }
}

/// Key-value metadata. A context holds a handful of entries, so a vector
/// beats a hash map and allocates nothing until the first insert.
#[derive(Default)]
pub(crate) struct Metadata {
    entries: Vec<(Cow<'static, str>, Entry)>,
}

impl Metadata {
    pub(crate) fn set<T: Any + Send + Sync>(&mut self, key: Cow<'static, str>, value: T) {
        let entry = Entry::new(value);
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => *slot = entry,
            None => self.entries.push((key, entry)),
        }
    }

    pub(crate) fn get<T: Any + Clone>(&self, key: &str) -> Result<T, MetadataError> {
        let (_, entry) =
            self.entries
                .iter()
                .find(|(k, _)| k == key)
                .ok_or_else(|| MetadataError::Missing {
                    key: key.to_owned(),
                })?;
        entry
            .value
            .downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| MetadataError::WrongType {
                key: key.to_owned(),
                expected: std::any::type_name::<T>(),
                found: entry.type_name,
            })
    }

    pub(crate) fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| k != key);
        before != self.entries.len()
    }

    pub(crate) fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.to_string()).collect()
    }
}

/// One value per type, like `http::Extensions`.
#[derive(Default)]
pub(crate) struct Extensions {
    entries: Vec<(TypeId, Box<dyn Any + Send + Sync>)>,
}

impl Extensions {
    pub(crate) fn insert<T: Any + Send + Sync>(&mut self, value: T) -> Option<T> {
        let id = TypeId::of::<T>();
        let boxed: Box<dyn Any + Send + Sync> = Box::new(value);
        match self.entries.iter_mut().find(|(k, _)| *k == id) {
            Some((_, slot)) => std::mem::replace(slot, boxed)
                .downcast::<T>()
                .ok()
                .map(|b| *b),
            None => {
                self.entries.push((id, boxed));
                None
            }
        }
    }

    pub(crate) fn get<T: Any + Clone>(&self) -> Option<T> {
        let id = TypeId::of::<T>();
        self.entries
            .iter()
            .find(|(k, _)| *k == id)
            .and_then(|(_, v)| v.downcast_ref::<T>().cloned())
    }

    pub(crate) fn remove<T: Any>(&mut self) -> Option<T> {
        let id = TypeId::of::<T>();
        let at = self.entries.iter().position(|(k, _)| *k == id)?;
        self.entries
            .swap_remove(at)
            .1
            .downcast::<T>()
            .ok()
            .map(|b| *b)
    }
}
