//! Collects every mistake in an item, so each gets its own message in one
//! compile.

use proc_macro2::TokenStream;

#[derive(Default)]
pub(crate) struct Errors {
    all: Option<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.all {
            Some(all) => all.combine(error),
            None => self.all = Some(error),
        }
    }

    /// How many errors so far.
    pub(crate) fn count(&self) -> usize {
        self.all.as_ref().map_or(0, |e| e.into_iter().count())
    }

    /// Keeps the value, or records the error and gives `None`.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub(crate) fn finish(self) -> Result<(), TokenStream> {
        match self.all {
            Some(error) => Err(error.into_compile_error()),
            None => Ok(()),
        }
    }
}
