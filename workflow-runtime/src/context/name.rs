//! A context's workflow name: a definition's `NAME`, kept as the static
//! string it is, or a name given at run time, shared.
//!
//! A `#[workflow]` makes a context per run; keeping its name as the
//! `&'static str` it already is spares each run an allocation and its
//! free, where `Arc<str>` copied the name into a new one every time.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

pub(crate) enum Name {
    /// A definition's name, and the shared copy of it that errors and
    /// reports ask for, made at the first ask: one per context, so each
    /// ask hands out the same string, as a given name's does.
    Static(&'static str, OnceLock<Arc<str>>),
    Shared(Arc<str>),
}

impl Name {
    pub(crate) fn of_definition(name: &'static str) -> Self {
        Name::Static(name, OnceLock::new())
    }

    /// The name as a shared string, for errors and reports.
    pub(crate) fn shared(&self) -> Arc<str> {
        match self {
            Name::Static(name, shared) => shared.get_or_init(|| Arc::from(*name)).clone(),
            Name::Shared(name) => name.clone(),
        }
    }

    /// The name as a metrics label, without allocating.
    pub(crate) fn label(&self) -> metrics::SharedString {
        match self {
            Name::Static(name, _) => metrics::SharedString::const_str(name),
            Name::Shared(name) => metrics::SharedString::from_shared(name.clone()),
        }
    }
}

impl Deref for Name {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        match self {
            Name::Static(name, _) => name,
            Name::Shared(name) => name,
        }
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
