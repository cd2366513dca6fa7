//! Expand: the checked model becomes code. Entry points run the three
//! phases and, on any mistake, emit the item unchanged (minus the step
//! attributes) beside the errors, so nothing else in the crate breaks.

mod behaviors;
mod checks;
mod compensation;
mod durable;
mod fallback;
mod free_step;
#[cfg(test)]
mod snapshots;
mod workflow;

pub(crate) use workflow::type_string;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

use crate::errors::Errors;
use crate::options::StepOptions;
use crate::{parse, validate};

pub(crate) fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut item: syn::ItemImpl = match parse::impl_block(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                "`#[workflow]` goes on an impl block: `impl MyWorkflow { ... }`",
            );
            return with_errors(item, error.into_compile_error());
        }
    };
    let mut errors = Errors::default();
    let raw = parse::workflow(args, &mut item, &mut errors);
    let krate = raw.options.krate.clone();
    let name = raw.options.name.as_ref().map(syn::LitStr::value);
    let durable = raw.options.durable.is_some();
    let model = validate::workflow(&item, raw, &mut errors);
    match (errors.finish(), model) {
        (Ok(()), Some(model)) => {
            let definition = workflow::definition(&model);
            quote! {
                #item
                #definition
            }
        }
        (Err(errors), model) => {
            let stub = fallback::definition(&item, model.as_ref(), krate, name, durable);
            with_errors(quote!(#item #stub), errors)
        }
        (Ok(()), None) => unreachable!("validation failed without an error"),
    }
}

pub(crate) fn free_step(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                "`#[step]` goes on a function, or on a method of a `#[workflow]` impl block",
            );
            return with_errors(item, error.into_compile_error());
        }
    };
    let mut errors = Errors::default();
    let options = StepOptions::parse(args, &mut errors);
    let model = validate::free_step(options, function.clone(), &mut errors);
    match (errors.finish(), model) {
        (Ok(()), Some(model)) => free_step::function(&model),
        (Err(errors), _) => with_errors(function.into_token_stream(), errors),
        (Ok(()), None) => unreachable!("validation failed without an error"),
    }
}

fn with_errors(item: TokenStream, errors: TokenStream) -> TokenStream {
    quote! {
        #item
        #errors
    }
}
