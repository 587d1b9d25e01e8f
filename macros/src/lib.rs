//! The attributes of [hashstash](https://docs.rs/hashstash) that memoize a function in a
//! stash: `#[stashed_result]` and `#[stash_mapped]`. Use them through `hashstash` (with its
//! `macros` feature, on by default), which documents them.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, FnArg, Ident, ItemFn, Lit, LitStr, Pat, ReturnType, Token, Type};

/// Memoizes a function in a stash: each result is computed once, stored under the
/// function's arguments, and read back afterwards, in this process or any other.
///
/// ```ignore
/// use hashstash::stashed_result;
///
/// #[stashed_result("functions_stash", engine = "lmdb", ignore(verbose))]
/// fn expensive(names: Vec<String>, verbose: bool) -> Vec<String> { names }
///
/// let stored = expensive::stash()?; // the function's stash: iterate it, `df()`, `sql(...)`
/// ```
///
/// Options (any order, after an optional root name of the parent stash):
/// - `stash = expr`: the parent stash, a `Stash` or `&Stash` (alone);
/// - `root_dir`, `dbname`, `engine`, `serializer`, `compress`, `b64`, `append_mode`, `url`,
///   `timeout_ms`, `lease_ms`, `ttl_ms`: options of the parent stash, as literals (with
///   `ttl_ms`, a result is computed again once it is older than that);
/// - `ignore(a, b)`: arguments left out of the key;
/// - `version = 2` / `version = "x"`: the version in the function stash's name, by default
///   a hash of the function's tokens, so that an edited function starts a new stash.
///
/// Results live in `stashed_result/<crate.module.function>@<version>` under the parent. A
/// function returning `Result` stores `Ok`, never `Err`. An `async fn` is stashed the same
/// way with hashstash's `async` feature: its lookups and writes run on tokio's blocking pool
/// (opening the parent stash, once, and encoding the key happen in the calling task). A stash that fails is reported on
/// stderr and the function runs without it. `name::stash()` and `name::stash_name()` reach
/// the function's stash.
#[proc_macro_attribute]
pub fn stashed_result(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Kind::Result)
}

/// Turns a function of one item into one that maps it over a `Vec` of items through its
/// stash, in parallel (`hashstash::Stash::map_named`), returning
/// `hashstash::Result<StashMap<Item, Result>>`. Takes the options of [`macro@stashed_result`]
/// (but `ignore`), and `num_threads = N`.
///
/// ```ignore
/// #[hashstash::stash_mapped("function_stash", num_threads = 4)]
/// fn describe(name: String) -> String { format!("a {name}") }
///
/// let all = describe(vec!["mole".into(), "lizard".into()])?.results()?;
/// ```
#[proc_macro_attribute]
pub fn stash_mapped(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Kind::Mapped)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Result,
    Mapped,
}

fn expand(attr: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    let options = match syn::parse::<Options>(attr) {
        Ok(options) => options,
        Err(e) => return e.to_compile_error().into(),
    };
    let function = match syn::parse::<ItemFn>(item) {
        Ok(function) => function,
        Err(e) => return e.to_compile_error().into(),
    };
    match generate(options, function, kind) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The attribute's arguments.
#[derive(Default)]
struct Options {
    /// The Python original's `@stashed_result("functions_stash")`: the parent stash's root name.
    root: Option<LitStr>,
    /// `stash = <expr>`: the parent stash, a `Stash` or `&Stash`.
    stash: Option<Expr>,
    /// Stash builder options: `engine = "sqlite"`, `compress = "zstd"`, ...
    builder: Vec<(Ident, Lit)>,
    /// `ignore(a, b)`: arguments left out of the key.
    ignore: Vec<Ident>,
    /// `version = ...`: replaces the hash of the function's tokens in its stash's name.
    version: Option<Lit>,
    /// `num_threads = N` (`#[stash_mapped]` only).
    num_threads: Option<Expr>,
}

/// Builder options and what kind of literal each takes.
const BUILDER_OPTIONS: &[(&str, &str)] = &[
    ("root_dir", "a string"),
    ("dbname", "a string"),
    ("engine", "a string"),
    ("serializer", "a string"),
    ("compress", "a string"),
    ("b64", "a bool"),
    ("append_mode", "a bool"),
    ("url", "a string"),
    ("timeout_ms", "an integer"),
    ("lease_ms", "an integer"),
    ("ttl_ms", "an integer"),
];

const ENGINES: &[&str] = &[
    "pairtree",
    "lmdb",
    "sqlite",
    "memory",
    "diskcache",
    "redis",
    "mongo",
];

impl Parse for Options {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut options = Options::default();
        if input.peek(LitStr) {
            options.root = Some(input.parse()?);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        let items = Punctuated::<OptionItem, Token![,]>::parse_terminated(input)?;
        for item in items {
            match item {
                OptionItem::Ignore(names) => options.ignore.extend(names),
                OptionItem::Pair(name, value) => {
                    let key = name.to_string();
                    let once = |taken: bool| {
                        if taken {
                            Err(syn::Error::new(
                                name.span(),
                                format!("`{key}` is given twice"),
                            ))
                        } else {
                            Ok(())
                        }
                    };
                    match key.as_str() {
                        "stash" => {
                            once(options.stash.is_some())?;
                            options.stash = Some(value);
                        }
                        "num_threads" => {
                            once(options.num_threads.is_some())?;
                            options.num_threads = Some(value);
                        }
                        "version" => {
                            once(options.version.is_some())?;
                            options.version =
                                Some(literal(&name, value, "a string or an integer")?);
                        }
                        _ => {
                            let Some((_, expected)) =
                                BUILDER_OPTIONS.iter().find(|(option, _)| *option == key)
                            else {
                                let known: Vec<&str> =
                                    BUILDER_OPTIONS.iter().map(|(o, _)| *o).collect();
                                return Err(syn::Error::new(
                                    name.span(),
                                    format!(
                                        "unknown option `{key}`; expected stash, version, ignore(...), \
                                         num_threads or one of {}",
                                        known.join(", ")
                                    ),
                                ));
                            };
                            once(options.builder.iter().any(|(n, _)| *n == name))?;
                            let value = literal(&name, value, expected)?;
                            check_literal(&name, &value, expected)?;
                            options.builder.push((name, value));
                        }
                    }
                }
            }
        }
        Ok(options)
    }
}

fn literal(name: &Ident, value: Expr, expected: &str) -> syn::Result<Lit> {
    match value {
        Expr::Lit(lit) => Ok(lit.lit),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{name}` takes {expected} literal"),
        )),
    }
}

fn check_literal(name: &Ident, value: &Lit, expected: &str) -> syn::Result<()> {
    let fits = matches!(
        (expected, value),
        ("a string", Lit::Str(_)) | ("a bool", Lit::Bool(_)) | ("an integer", Lit::Int(_))
    );
    if !fits {
        return Err(syn::Error::new_spanned(
            value,
            format!("`{name}` takes {expected}"),
        ));
    }
    if let (true, Lit::Str(s)) = (name == "engine", value) {
        if !ENGINES.contains(&s.value().as_str()) {
            return Err(syn::Error::new_spanned(
                s,
                format!(
                    "unknown engine {:?}; expected one of {}",
                    s.value(),
                    ENGINES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

enum OptionItem {
    Pair(Ident, Expr),
    Ignore(Vec<Ident>),
}

impl Parse for OptionItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        if name == "ignore" && input.peek(syn::token::Paren) {
            let inside;
            syn::parenthesized!(inside in input);
            let names = Punctuated::<Ident, Token![,]>::parse_terminated(&inside)?;
            return Ok(OptionItem::Ignore(names.into_iter().collect()));
        }
        input.parse::<Token![=]>()?;
        Ok(OptionItem::Pair(name, input.parse()?))
    }
}

/// A plain `name: Type` argument.
struct Argument {
    name: Ident,
    ty: Type,
}

fn arguments(function: &ItemFn) -> syn::Result<Vec<Argument>> {
    function
        .sig
        .inputs
        .iter()
        .map(|input| match input {
            FnArg::Receiver(receiver) => Err(syn::Error::new_spanned(
                receiver,
                "a stashed function cannot take `self`: make it a free function that takes \
                 what it needs from `self` as arguments",
            )),
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
                    Ok(Argument {
                        name: ident.ident.clone(),
                        ty: (*typed.ty).clone(),
                    })
                }
                other => Err(syn::Error::new_spanned(
                    other,
                    "a stashed function's arguments need plain names (`name: Type`): they make \
                     its key",
                )),
            },
        })
        .collect()
}

/// Whether a return type is spelled `...Result<...>`: its `Ok` is stored, its `Err` not.
fn returns_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result"),
        _ => false,
    }
}

/// A 64-bit FNV-1a hash: stable across builds and platforms, which `std`'s hashers are not.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn generate(options: Options, function: ItemFn, kind: Kind) -> syn::Result<Tokens> {
    let sig = &function.sig;
    let is_async = sig.asyncness.is_some();
    if let (Some(asyncness), Kind::Mapped) = (&sig.asyncness, kind) {
        return Err(syn::Error::new_spanned(
            asyncness,
            "#[stash_mapped] maps blocking functions on a thread pool: an async function \
             cannot be mapped (stash it with #[stashed_result] and join its calls)",
        ));
    }
    let ReturnType::Type(_, ret) = &sig.output else {
        return Err(syn::Error::new_spanned(
            sig,
            "a stashed function needs a return type: its result is what is stored",
        ));
    };
    if options.stash.is_some() && (options.root.is_some() || !options.builder.is_empty()) {
        return Err(syn::Error::new(
            Span::call_site(),
            "`stash = ...` names the stash itself: a root name or stash options cannot go with it",
        ));
    }
    if kind == Kind::Result && options.num_threads.is_some() {
        return Err(syn::Error::new(
            Span::call_site(),
            "`num_threads` is an option of #[stash_mapped]",
        ));
    }
    let args = arguments(&function)?;
    for ignored in &options.ignore {
        if !args.iter().any(|a| a.name == *ignored) {
            return Err(syn::Error::new_spanned(
                ignored,
                format!("`{ignored}` is not an argument of this function"),
            ));
        }
    }
    if kind == Kind::Mapped && (args.len() != 1 || !options.ignore.is_empty()) {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            "#[stash_mapped] takes a function of exactly one argument (the item), none ignored",
        ));
    }

    let vis = &function.vis;
    let name = &sig.ident;
    let attrs = &function.attrs;
    let version = match &options.version {
        Some(Lit::Str(s)) => s.value(),
        Some(Lit::Int(i)) => format!("v{}", i.base10_digits()),
        Some(other) => {
            return Err(syn::Error::new_spanned(
                other,
                "`version` takes a string or an integer",
            ))
        }
        None => format!("{:016x}", fnv1a(&function.to_token_stream().to_string())),
    };
    let parent_fn = format_ident!("__hashstash_parent_of_{}", name);
    let name_fn = format_ident!("__hashstash_name_of_{}", name);
    let parent = parent_stash(&options);
    let name_text = name.to_string();

    let shared = quote! {
        /// The stash this function's results are stored under (its parent).
        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #parent_fn() -> ::hashstash::Result<::hashstash::Stash> {
            static PARENT: ::std::sync::OnceLock<::hashstash::Stash> = ::std::sync::OnceLock::new();
            if let Some(parent) = PARENT.get() {
                return Ok(parent.clone());
            }
            let parent: ::hashstash::Stash = #parent;
            Ok(PARENT.get_or_init(|| parent).clone())
        }

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #name_fn() -> ::std::string::String {
            ::std::format!("{}::{}@{}", ::std::module_path!(), #name_text, #version)
        }

        #[doc = concat!("The stash of `", #name_text, "`'s results.")]
        #vis mod #name {
            /// The name of the function's stash: its Rust path, `@`, and its version (a hash
            /// of the function's tokens, or the `version` given).
            pub fn stash_name() -> ::std::string::String {
                super::#name_fn()
            }

            /// The stash of the function's results (the Python original's `function.stash`): iterate
            /// it, turn it into a DataFrame or query it with SQL.
            pub fn stash() -> ::hashstash::Result<::hashstash::Stash> {
                super::#parent_fn()?.function_stash(&self::stash_name())
            }

            /// Drops the stored result of one call, so that the next call with these
            /// arguments computes it again; true if there was one. `args` is what results are
            /// keyed by: for `#[stashed_result]` the tuple of the function's arguments in order
            /// (ignored ones left out), owned or borrowed: `(a, b)`, or `(x,)` for one
            /// argument; for `#[stash_mapped]` the item.
            pub fn invalidate<A>(args: &A) -> ::hashstash::Result<bool>
            where
                A: ::hashstash::memo::__Serialize + ?Sized,
            {
                self::stash()?.invalidate(args)
            }

            /// Drops every stored result of the function; returns how many there were.
            pub fn invalidate_all() -> ::hashstash::Result<usize> {
                super::#parent_fn()?.invalidate_func(&self::stash_name())
            }
        }
    };

    let (impl_generics, _, where_clause) = sig.generics.split_for_impl();
    let body = &function.block;
    let arg_names: Vec<&Ident> = args.iter().map(|a| &a.name).collect();
    let arg_types: Vec<&Type> = args.iter().map(|a| &a.ty).collect();
    let asyncness = &sig.asyncness;
    let inner = quote! {
        #asyncness fn __hashstash_compute #impl_generics (#(#arg_names: #arg_types),*) -> #ret #where_clause #body
    };

    let wrapper = match kind {
        Kind::Result => {
            let key_args: Vec<&Ident> = args
                .iter()
                .map(|a| &a.name)
                .filter(|n| !options.ignore.contains(n))
                .collect();
            let await_ = if is_async {
                quote! { .await }
            } else {
                quote! {}
            };
            let computed = quote! { __hashstash_compute(#(#arg_names),*) #await_ };
            let computed = if returns_result(ret) {
                computed
            } else {
                quote! { ::std::result::Result::<_, ::std::convert::Infallible>::Ok(#computed) }
            };
            // A blocking function hands over a closure; an async one a future, awaited off
            // the stash's blocking calls (feature `async` of hashstash).
            let call = if is_async {
                quote! {
                    ::hashstash::async_stash::__call_stashed_async(key, async move { #computed }).await
                }
            } else {
                quote! { ::hashstash::memo::__call_stashed(key, move || #computed) }
            };
            let finish = if returns_result(ret) {
                quote! { result }
            } else {
                quote! {
                    match result {
                        ::std::result::Result::Ok(value) => value,
                        ::std::result::Result::Err(never) => match never {},
                    }
                }
            };
            quote! {
                #(#attrs)*
                #vis #sig {
                    #inner
                    // The key is made (and its borrows end) before the arguments move into
                    // the computation.
                    let key = ::hashstash::memo::__stashed_key(
                        #name_fn(),
                        #parent_fn,
                        &(#(&#key_args,)*),
                    );
                    let result = #call;
                    #finish
                }
            }
        }
        Kind::Mapped => {
            let item_ty = arg_types[0];
            let threads = match &options.num_threads {
                Some(n) => quote! { ::std::option::Option::Some(#n) },
                None => quote! { ::std::option::Option::None },
            };
            let mut map_sig = sig.clone();
            let items: syn::FnArg = syn::parse_quote! { items: ::std::vec::Vec<#item_ty> };
            map_sig.inputs = std::iter::once(items).collect();
            map_sig.output = syn::parse_quote! {
                -> ::hashstash::Result<::hashstash::map::StashMap<#item_ty, #ret>>
            };
            quote! {
                #(#attrs)*
                #vis #map_sig {
                    #inner
                    let options = ::hashstash::map::MapOptions {
                        num_threads: #threads,
                        ..::std::default::Default::default()
                    };
                    #parent_fn()?.map_named(&#name::stash_name(), __hashstash_compute, items, options)
                }
            }
        }
    };
    Ok(quote! { #shared #wrapper })
}

/// The expression opening the parent stash, inside a function returning `Result`.
fn parent_stash(options: &Options) -> Tokens {
    if let Some(stash) = &options.stash {
        return quote! { ::std::clone::Clone::clone(::std::borrow::Borrow::<::hashstash::Stash>::borrow(&(#stash))) };
    }
    let mut builder = quote! { ::hashstash::Stash::builder() };
    if let Some(root) = &options.root {
        builder = quote! { #builder.root_dir(#root) };
    }
    for (name, value) in &options.builder {
        let setter = match name.to_string().as_str() {
            "engine" | "serializer" | "compress" => {
                quote! { .#name(::std::str::FromStr::from_str(#value)?) }
            }
            _ => quote! { .#name(#value) },
        };
        builder = quote! { #builder #setter };
    }
    quote! { #builder.open()? }
}
