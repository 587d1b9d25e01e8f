//! Compressors: the second step of the value path (bytes -> smaller bytes).
//!
//! Every decompressor bounds what it allocates: the block formats (lz4, blosc) by what the
//! input can really hold, so a corrupt or hostile length header (an lz4 size that claims 4 GB,
//! say) is an error, not an allocation; the streaming formats (zlib, gzip, bz2, zstd) grow with
//! the real output and stop with an error at [`MAX_DECOMPRESSED`], so a small "bomb" cannot
//! exhaust memory.
//!
//! Every compressor also refuses, with [`Error::Encode`] and before it does any work, an
//! input it could not give back whole: a value is never stored unless it can be read again.
//! The limits ([`Compressor::max_input`]): raw none; zlib, gzip, bz2 and zstd 4 GiB (what
//! their decompression accepts, [`MAX_DECOMPRESSED`]); lz4 4 GiB minus one byte (its
//! 32-bit size header); blosc 2 GiB minus 17 bytes (c-blosc's `BLOSC_MAX_BUFFERSIZE`,
//! beyond which its compression returns nothing at all).

use crate::error::{Error, Result};
use std::io::{Read, Write};

/// The largest ratio lz4 and blosc can reach (a 255-byte run per input byte), plus slack.
const MAX_RATIO: usize = 256;

/// The most bytes one value may decompress to (4 GiB).
pub const MAX_DECOMPRESSED: u64 = 4 << 30;

/// The largest input c-blosc compresses: `BLOSC_MAX_BUFFERSIZE`, `INT_MAX` minus its
/// 16-byte header. Past it `blosc_compress` returns 0, which the `blosc` crate hands back
/// as an empty buffer, not an error.
const BLOSC_MAX_INPUT: u64 = i32::MAX as u64 - 16;

/// How serialized bytes are compressed.
///
/// ```
/// use hashstash::Compressor;
///
/// let text = "the same words again ".repeat(100);
/// for compress in Compressor::available() {
///     let packed = hashstash::encode(text.as_bytes(), compress, false)?;
///     assert_eq!(hashstash::decode(&packed, compress, false)?, text.as_bytes());
/// }
/// let zlib = hashstash::encode(text.as_bytes(), Compressor::Zlib, false)?;
/// assert!(zlib.len() < text.len() / 10);
/// assert_eq!("bz2".parse::<Compressor>()?, Compressor::Bz2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compressor {
    /// No compression.
    Raw,
    /// lz4 block format with the size prepended (lz4_flex): the fastest (the default).
    #[default]
    Lz4,
    /// zlib (deflate with a zlib header).
    Zlib,
    /// gzip (deflate with a gzip header).
    Gzip,
    /// bzip2: the smallest, the slowest.
    Bz2,
    /// zstd (cargo feature `zstd`).
    Zstd,
    /// blosc (cargo feature `blosc`; links the system's c-blosc).
    Blosc,
}

impl Compressor {
    /// Every compressor, whether or not it is compiled in.
    pub const ALL: [Compressor; 7] = [
        Compressor::Raw,
        Compressor::Lz4,
        Compressor::Zlib,
        Compressor::Gzip,
        Compressor::Bz2,
        Compressor::Zstd,
        Compressor::Blosc,
    ];

    /// The compressor's name, as used in options and stash folder names.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Raw => "raw",
            Compressor::Lz4 => "lz4",
            Compressor::Zlib => "zlib",
            Compressor::Gzip => "gzip",
            Compressor::Bz2 => "bz2",
            Compressor::Zstd => "zstd",
            Compressor::Blosc => "blosc",
        }
    }

    /// Whether this build has the compressor (zstd and blosc are cargo features).
    pub fn is_available(self) -> bool {
        let optional = [
            (Compressor::Zstd, cfg!(feature = "zstd")),
            (Compressor::Blosc, cfg!(feature = "blosc")),
        ];
        optional.iter().all(|(c, compiled)| *c != self || *compiled)
    }

    /// The compressors this build has.
    pub fn available() -> impl Iterator<Item = Compressor> {
        Compressor::ALL.into_iter().filter(|c| c.is_available())
    }

    /// The largest input this compressor stores so that it can be read back (`None`: no
    /// limit of its own); see the module docs.
    pub fn max_input(self) -> Option<u64> {
        match self {
            Compressor::Raw => None,
            Compressor::Lz4 => Some(u64::from(u32::MAX)),
            Compressor::Blosc => Some(BLOSC_MAX_INPUT),
            Compressor::Zlib | Compressor::Gzip | Compressor::Bz2 | Compressor::Zstd => {
                Some(MAX_DECOMPRESSED)
            }
        }
    }

    /// Compresses `data`; an input over [`Compressor::max_input`] is an error.
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>> {
        let io_err = |e: std::io::Error| Error::Encode {
            what: "value",
            format: self.name().into(),
            source: e.into(),
        };
        if let Some(limit) = self.max_input().filter(|&l| data.len() as u64 > l) {
            return Err(Error::Encode {
                what: "value",
                format: self.name().into(),
                source: format!(
                    "{} bytes is more than {} can store and give back ({limit} bytes at most)",
                    data.len(),
                    self.name()
                )
                .into(),
            });
        }
        match self {
            Compressor::Raw => Ok(data.to_vec()),
            Compressor::Lz4 => lz4_compress(data),
            Compressor::Zlib => {
                let mut enc =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(data).map_err(io_err)?;
                enc.finish().map_err(io_err)
            }
            Compressor::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(data).map_err(io_err)?;
                enc.finish().map_err(io_err)
            }
            Compressor::Bz2 => {
                let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
                enc.write_all(data).map_err(io_err)?;
                enc.finish().map_err(io_err)
            }
            Compressor::Zstd => self.zstd_compress(data).map_err(io_err),
            Compressor::Blosc => self.blosc_compress(data),
        }
    }

    /// Decompresses bytes written by [`Compressor::compress`].
    pub fn decompress(self, data: &[u8]) -> Result<Vec<u8>> {
        let fail = |e: crate::error::BoxError| Error::decode("value", self.name(), e);
        match self {
            Compressor::Raw => Ok(data.to_vec()),
            Compressor::Lz4 => {
                let mut out = Vec::new();
                self.decompress_append(data, &mut out)?;
                Ok(out)
            }
            Compressor::Zlib => {
                read_all(flate2::read::ZlibDecoder::new(data)).map_err(|e| fail(e.into()))
            }
            Compressor::Gzip => {
                read_all(flate2::read::GzDecoder::new(data)).map_err(|e| fail(e.into()))
            }
            Compressor::Bz2 => {
                read_all(bzip2::read::BzDecoder::new(data)).map_err(|e| fail(e.into()))
            }
            Compressor::Zstd => self.zstd_decompress(data),
            Compressor::Blosc => self.blosc_decompress(data),
        }
    }

    /// [`Compressor::decompress`], appending to `out` (raw and lz4 without a buffer of
    /// their own). On an error `out` is as it was.
    pub fn decompress_append(self, data: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let fail = |e: crate::error::BoxError| Error::decode("value", self.name(), e);
        match self {
            Compressor::Raw => out.extend_from_slice(data),
            Compressor::Lz4 => {
                let (claimed, block) = data
                    .split_first_chunk::<4>()
                    .map(|(size, block)| (u32::from_le_bytes(*size) as usize, block))
                    .ok_or_else(|| fail("shorter than the lz4 size header".into()))?;
                // The header is not trusted with an allocation: lz4 cannot expand more.
                if claimed > data.len().saturating_mul(MAX_RATIO) + 64 {
                    return Err(fail(
                        format!(
                            "lz4 header claims {claimed} bytes from {} bytes of input",
                            data.len()
                        )
                        .into(),
                    ));
                }
                let start = out.len();
                out.resize(start + claimed, 0);
                match lz4_flex::block::decompress_into(block, &mut out[start..]) {
                    Ok(written) if written == claimed => {}
                    Ok(written) => {
                        out.truncate(start);
                        return Err(fail(
                            format!("lz4 gave {written} bytes where its header said {claimed}")
                                .into(),
                        ));
                    }
                    Err(e) => {
                        out.truncate(start);
                        return Err(fail(e.into()));
                    }
                }
            }
            other => out.extend_from_slice(&other.decompress(data)?),
        }
        Ok(())
    }

    #[cfg_attr(all(feature = "zstd", feature = "blosc"), allow(dead_code))]
    fn not_compiled(self) -> Error {
        Error::InvalidOption {
            option: "compress",
            message: format!(
                "compressor {} is not compiled in: enable the cargo feature `{}`",
                self.name(),
                self.name()
            ),
        }
    }

    #[cfg(feature = "zstd")]
    fn zstd_compress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        zstd::encode_all(data, 3)
    }
    #[cfg(not(feature = "zstd"))]
    fn zstd_compress(self, _data: &[u8]) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::other(self.not_compiled()))
    }
    #[cfg(feature = "zstd")]
    fn zstd_decompress(self, data: &[u8]) -> Result<Vec<u8>> {
        // Streaming: the output grows with the real data, never from a header's claim.
        zstd::stream::read::Decoder::new(data)
            .and_then(read_all)
            .map_err(|e| Error::decode("value", self.name(), e))
    }
    #[cfg(not(feature = "zstd"))]
    fn zstd_decompress(self, _data: &[u8]) -> Result<Vec<u8>> {
        Err(self.not_compiled())
    }

    #[cfg(feature = "blosc")]
    fn blosc_compress(self, data: &[u8]) -> Result<Vec<u8>> {
        let ctx = blosc::Context::new()
            .compressor(blosc::Compressor::LZ4)
            .map_err(|e| Error::Encode {
                what: "value",
                format: "blosc".into(),
                source: format!("{e:?}").into(),
            })?;
        let packed: Vec<u8> = ctx.compress(data).into();
        // c-blosc reports a failure by writing nothing (its return value 0).
        if packed.is_empty() {
            return Err(Error::Encode {
                what: "value",
                format: "blosc".into(),
                source: format!("c-blosc could not compress {} bytes", data.len()).into(),
            });
        }
        Ok(packed)
    }
    #[cfg(not(feature = "blosc"))]
    fn blosc_compress(self, _data: &[u8]) -> Result<Vec<u8>> {
        Err(self.not_compiled())
    }
    #[cfg(feature = "blosc")]
    fn blosc_decompress(self, data: &[u8]) -> Result<Vec<u8>> {
        let fail = |m: String| Error::decode("value", "blosc", m);
        // c-blosc trusts its header; check it against the input before letting it allocate.
        let claimed = blosc::validate(data).map_err(|_| fail("not a valid blosc buffer".into()))?;
        if claimed > data.len().saturating_mul(MAX_RATIO) + 64 {
            return Err(fail(format!(
                "blosc header claims {claimed} bytes from {} bytes",
                data.len()
            )));
        }
        // SAFETY: the header was validated against the buffer's real length above, and u8 has
        // no invalid bit patterns.
        unsafe { blosc::decompress_bytes::<u8>(data) }.map_err(|e| fail(format!("{e:?}")))
    }
    #[cfg(not(feature = "blosc"))]
    fn blosc_decompress(self, _data: &[u8]) -> Result<Vec<u8>> {
        Err(self.not_compiled())
    }
}

/// Reads a decoder to its end, refusing output beyond [`MAX_DECOMPRESSED`].
fn read_all(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(MAX_DECOMPRESSED + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(std::io::Error::other("decompresses to more than 4 GiB"));
    }
    Ok(out)
}

impl std::str::FromStr for Compressor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let found = match s {
            "none" | "" => Some(Compressor::Raw),
            _ => Compressor::ALL.into_iter().find(|c| c.name() == s),
        };
        found.ok_or_else(|| Error::InvalidOption {
            option: "compress",
            message: format!(
                "unknown compressor {s:?}; expected one of raw, lz4, zlib, gzip, bz2, zstd, blosc"
            ),
        })
    }
}

impl std::fmt::Display for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// lz4 block with its size prepended (little-endian u32, as Python's `lz4.block` writes it).
/// The compressor's hash table is kept per thread: allocating and freeing one per value cost
/// as much as compressing a small value.
fn lz4_compress(data: &[u8]) -> Result<Vec<u8>> {
    use lz4_flex::block::{compress_into_with_table, get_maximum_output_size, CompressTable};
    use std::cell::RefCell;
    thread_local! {
        static TABLE: RefCell<CompressTable> = RefCell::new(CompressTable::small());
    }
    let fail = |why: String| Error::Encode {
        what: "value",
        format: "lz4".into(),
        source: why.into(),
    };
    let size =
        u32::try_from(data.len()).map_err(|_| fail("lz4 blocks are limited to 4 GiB".into()))?;
    let mut out = vec![0; 4 + get_maximum_output_size(data.len())];
    out[..4].copy_from_slice(&size.to_le_bytes());
    let written = TABLE.with(|table| match table.try_borrow_mut() {
        Ok(mut table) => {
            // A table grown for one large value would make every small one clear 16 KiB.
            if data.len() < usize::from(u16::MAX) && matches!(*table, CompressTable::Large(_)) {
                *table = CompressTable::small();
            }
            compress_into_with_table(data, &mut out[4..], &mut table)
        }
        // Only if compressing re-entered itself on this thread, which nothing does today.
        Err(_) => lz4_flex::block::compress_into(data, &mut out[4..]),
    });
    let written = written.map_err(|e| fail(e.to_string()))?;
    out.truncate(4 + written);
    Ok(out)
}
