//! Link flags for the `hashstash` binary only (the library is untouched).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // The CLI is a short process: RELR packs its ~235,000 relative relocations into a few
    // kilobytes, so the loader reads far fewer pages at start (GNU ld 2.38+ or lld; a
    // linker without it warns and ignores the flag). Linux with glibc only.
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
