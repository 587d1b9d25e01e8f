//! The one integration-test binary: every test module is listed here.

mod cli;
mod codecs;
mod common;
mod conformance;
mod corruption;
mod keys;
mod processes;
