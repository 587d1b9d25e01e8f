//! Serializers and compressors side by side (features `zstd` and `blosc` add two more to the
//! five built in): the stored size of one value, and a round trip through each.
//!
//! `cargo run --features zstd,blosc --example compressors`

use hashstash::{Codec, Compressor, Serializer};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Reading {
    sensor: String,
    values: Vec<f64>,
    note: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reading = Reading {
        sensor: "north-7".into(),
        values: (0..500).map(|i| (i as f64 / 10.0).sin()).collect(),
        note: "calibrated ".repeat(20),
    };
    print!("{:<10}", "");
    for compress in Compressor::available() {
        print!("{:>9}", compress.name());
    }
    println!("   (stored bytes)");
    for serializer in Serializer::ALL {
        print!("{:<10}", serializer.name());
        for compress in Compressor::available() {
            let codec = Codec {
                serializer,
                compress,
                b64: false,
            };
            let stored = codec.encode_value(&reading)?;
            let back: Reading = codec.decode_value(&stored)?;
            assert_eq!(back, reading, "{serializer:?} {compress:?}");
            print!("{:>9}", stored.len());
        }
        println!();
    }
    Ok(())
}
