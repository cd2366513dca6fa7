//! A context's workflow name: a definition's `NAME`, kept as the static
//! string it is, or a name given at run time, shared.
//!
//! A `#[workflow]` makes a context per run; keeping its name as the
//! `&'static str` it already is spares each run an allocation and its
//! free, where `Arc<str>` copied the name into a new one every time.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

#[derive(Clone)]
pub(crate) enum Name {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Name {
    /// The name as a shared string, allocated for a static one: for
    /// errors and reports, which are made rarely.
    pub(crate) fn shared(&self) -> Arc<str> {
        match self {
            Name::Static(name) => Arc::from(*name),
            Name::Shared(name) => name.clone(),
        }
    }

    /// The name as a metrics label, without allocating.
    pub(crate) fn label(&self) -> metrics::SharedString {
        match self {
            Name::Static(name) => metrics::SharedString::const_str(name),
            Name::Shared(name) => metrics::SharedString::from_shared(name.clone()),
        }
    }
}

impl Deref for Name {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        match self {
            Name::Static(name) => name,
            Name::Shared(name) => name,
        }
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
