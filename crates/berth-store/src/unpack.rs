//! Safe, streaming extraction of one image layer (a possibly compressed tar) into a directory
//! that becomes an overlayfs lower/upper dir.
//!
//! The tar format is parsed here (ustar, GNU long names, PAX extended headers) so that every
//! header record is bounded by [`Limits::max_header_bytes`] before it is buffered, and every
//! byte of the uncompressed stream is counted against [`Limits::max_uncompressed`] and hashed
//! for the diff ID. All filesystem writes go through file descriptors:
//!
//! - an entry's parent directory is opened with `openat2(RESOLVE_IN_ROOT)` from the layer root,
//!   so `..` and symlinks (absolute or relative) can never leave it; missing parents are created
//!   one `mkdirat` at a time, each re-resolved inside the root;
//! - paths containing a `..` component are refused outright; absolute names are taken relative
//!   to the layer root;
//! - the final component is created with `*at` calls that never follow a symlink (`O_EXCL |
//!   O_NOFOLLOW`, `mkdirat`, `symlinkat`, `mknodat`, `linkat` without `AT_SYMLINK_FOLLOW`); an
//!   existing entry at that path is removed first (a directory is kept when the new entry is a
//!   directory too);
//! - owners, modes, xattrs and times are set on an open fd (`fchown`, `fchmod`, `fsetxattr`,
//!   `futimens`) or with `AT_SYMLINK_NOFOLLOW`; directory modes and times are applied at the end
//!   (so a read-only directory can still be filled, and later entries don't disturb its mtime),
//!   re-opened with `O_NOFOLLOW | O_DIRECTORY`.
//!
//! OCI whiteouts become overlayfs whiteouts: `.wh.<name>` → a 0:0 character device at `<name>`,
//! `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;

use crate::digest::Hasher;
use crate::{Digest, Error, Result};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From an OCI/Docker layer media type (`…tar`, `…tar+gzip`, `…tar+zstd`,
    /// `application/vnd.docker.image.rootfs.diff.tar.gzip`, the foreign/nondistributable
    /// variants); an unknown media type is [`Error::Invalid`] naming it.
    pub fn from_media_type(mt: &str) -> Result<Compression> {
        match mt {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Ok(Compression::Zstd),
            other => Err(Error::Invalid(format!(
                "unsupported layer media type {other:?}"
            ))),
        }
    }

    /// Sniffs magic bytes (gzip `1f 8b`, zstd `28 b5 2f fd`), for docker-save tarballs whose
    /// layers don't say how they are compressed. Anything else is taken as a plain tar.
    pub fn sniff(first_bytes: &[u8]) -> Compression {
        if first_bytes.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if first_bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Bounds on what one layer may make the unpacker do.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum size of the uncompressed tar stream, in bytes.
    pub max_uncompressed: u64,
    /// Maximum number of tar entries (files, dirs, links, whiteouts...).
    pub max_entries: u64,
    /// Maximum size of the PAX extended header and GNU long name/link records that precede
    /// one entry (together).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uncompressed: 64 << 30,
            max_entries: 10_000_000,
            max_header_bytes: 1 << 20,
        }
    }
}

/// Everything [`apply_layer_with`] can be told; [`apply_layer`] uses the defaults with the
/// given limits.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    pub limits: Limits,
    /// Fail (instead of skipping with a debug log) on a device node that can't be created
    /// because we are not privileged.
    pub devices_required: bool,
    /// Whether to act as root (apply owners, create device nodes, set security.capability).
    /// `None`: decide from the effective uid.
    pub privileged: Option<bool>,
    /// A plain archive (`docker cp`), not a layer: `.wh.` names are ordinary files.
    pub plain: bool,
    /// Refuse to replace a directory with a non-directory or the reverse (`docker cp`'s
    /// `noOverwriteDirNonDir`) instead of removing what is there.
    pub no_overwrite_dir_non_dir: bool,
    /// Opens parent directories instead of `openat2(RESOLVE_IN_ROOT)` from the root: for a
    /// tree with other file systems mounted into it (a container's volumes), which the
    /// resolver reaches by their own fds. It must keep every path inside those trees.
    pub resolver: Option<Resolver>,
}

/// Opens directories of an extraction by their path relative to its root (normalized: no
/// `.`/`..`, no leading `/`; empty for the root), never leaving the trees it serves.
pub trait DirResolver: Send + Sync {
    fn open_dir(&self, rel: &[u8]) -> io::Result<OwnedFd>;
    /// Whether `rel` is where another file system is mounted (it can't be replaced).
    fn is_mount_point(&self, rel: &[u8]) -> bool {
        let _ = rel;
        false
    }
}

/// A shared [`DirResolver`] (for [`ApplyOptions::resolver`]).
#[derive(Clone)]
pub struct Resolver(pub Arc<dyn DirResolver>);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

/// What applying a layer produced.
#[derive(Debug, Clone)]
pub struct Applied {
    /// sha256 of the uncompressed tar stream (the whole stream, through its end).
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    /// Number of tar entries applied (metadata records like PAX headers not counted).
    pub entries: u64,
}

/// Extracts one layer (a compressed tar stream) into `dest`, an empty directory. See the
/// module documentation for the protections; on error `dest` holds a partial extraction that
/// the caller must discard.
pub fn apply_layer(
    r: impl Read,
    comp: Compression,
    dest: &Path,
    limits: &Limits,
) -> Result<Applied> {
    let opts = ApplyOptions {
        limits: limits.clone(),
        ..ApplyOptions::default()
    };
    apply_layer_with(r, comp, dest, &opts)
}

const READ_BUF: usize = 1 << 20;
const DECODER_BUF: usize = 256 << 10;

/// [`apply_layer`] with all options. Decompression runs on the calling thread; the diff ID is
/// hashed on a helper thread.
pub fn apply_layer_with(
    r: impl Read,
    comp: Compression,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<Applied> {
    let reader: Box<dyn Read + '_> = match comp {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(
            BufReader::with_capacity(DECODER_BUF, r),
        )),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(DECODER_BUF, r))
                .map_err(|e| Error::Invalid(format!("zstd layer: {e}")))?,
        ),
    };
    let (root, privileged) = open_dest(dest, opts)?;
    extract_local(reader, root, privileged, dest, opts)
}

/// Extracts a plain (uncompressed) tar into the directory `root` (`shown` names it in
/// errors), with the same protections as [`apply_layer`]; set [`ApplyOptions::plain`] for an
/// archive that is not a layer. On error the directory holds a partial extraction.
pub fn extract_into(
    r: impl Read,
    root: OwnedFd,
    shown: &Path,
    opts: &ApplyOptions,
) -> Result<Applied> {
    let privileged = opts
        .privileged
        .unwrap_or_else(|| rustix::process::geteuid().is_root());
    extract_local(Box::new(r), root, privileged, shown, opts)
}

fn extract_local<'a>(
    reader: Box<dyn Read + 'a>,
    root: OwnedFd,
    privileged: bool,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<Applied> {
    // Read buffers are shared with the hashing thread (no copy) and come back through
    // `returned` once hashed, so at most POOL buffers exist.
    std::thread::scope(|scope| {
        let (to_hasher, hasher_rx) = mpsc::sync_channel::<(Arc<Vec<u8>>, usize)>(POOL);
        let (return_tx, returned) = mpsc::channel::<Arc<Vec<u8>>>();
        let hasher = scope.spawn(move || {
            let mut h = Hasher::new();
            for (buf, n) in hasher_rx {
                h.update(&buf[..n]);
                // The extractor may have finished; then the buffer is simply freed.
                let _ = return_tx.send(buf);
            }
            h
        });
        let source = Source::Local {
            r: reader,
            to_hasher: Some(to_hasher),
            returned,
            allocated: 0,
        };
        let mut x = Extractor::new(source, root, dest, opts, privileged);
        let r = x.run();
        // Closing the channel ends the hasher thread.
        if let Source::Local { to_hasher, .. } = &mut x.input.source {
            *to_hasher = None;
        }
        let digest = hasher
            .join()
            .map_err(|_| Error::Internal("the layer hashing thread panicked".into()))?
            .finish();
        r?;
        Ok(x.applied(digest))
    })
}

/// Like [`apply_layer_with`], but decompression runs on a helper thread, overlapping with
/// the extraction's filesystem writes (the reader must be `Send`). Used by
/// [`crate::snapshot::unpack_layers`].
pub fn apply_layer_parallel(
    r: impl Read + Send,
    comp: Compression,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<Applied> {
    let mut reader: Box<dyn Read + Send + '_> = match comp {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(
            BufReader::with_capacity(DECODER_BUF, r),
        )),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(DECODER_BUF, r))
                .map_err(|e| Error::Invalid(format!("zstd layer: {e}")))?,
        ),
    };
    let (root, privileged) = open_dest(dest, opts)?;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<io::Result<(Arc<Vec<u8>>, usize)>>(POOL);
        let (ret, ret_rx) = mpsc::channel::<Arc<Vec<u8>>>();
        scope.spawn(move || {
            let mut allocated = 0;
            loop {
                let back = match ret_rx.try_recv() {
                    Ok(b) => Some(b),
                    Err(_) if allocated < POOL => None,
                    Err(_) => match ret_rx.recv() {
                        Ok(b) => Some(b),
                        Err(_) => return, // the extractor is gone
                    },
                };
                let mut b = match back.map(Arc::try_unwrap) {
                    Some(Ok(v)) => v,
                    _ => {
                        allocated += 1;
                        vec![0u8; READ_BUF]
                    }
                };
                let n = loop {
                    match reader.read(&mut b) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        r => break r,
                    }
                };
                let done = !matches!(n, Ok(n) if n > 0);
                if tx.send(n.map(|n| (Arc::new(b), n))).is_err() || done {
                    return;
                }
            }
        });
        let source = Source::Remote {
            rx,
            ret,
            hasher: Hasher::new(),
            eof: false,
        };
        let mut x = Extractor::new(source, root, dest, opts, privileged);
        let r = x.run();
        // Dropping the extractor closes both channels, which ends the decoder thread.
        let source = std::mem::replace(&mut x.input.source, Source::Done);
        r?;
        let Source::Remote { hasher, .. } = source else {
            return Err(Error::Internal("layer input in an unexpected state".into()));
        };
        Ok(x.applied(hasher.finish()))
    })
}

fn open_dest(dest: &Path, opts: &ApplyOptions) -> Result<(OwnedFd, bool)> {
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(dest, e.into()))?;
    let privileged = opts
        .privileged
        .unwrap_or_else(|| rustix::process::geteuid().is_root());
    Ok((root, privileged))
}

/// Read buffers in flight between the extractor and its helper thread.
const POOL: usize = 4;

/// Where the uncompressed bytes come from.
enum Source<'a> {
    /// Decompressed here; a helper thread hashes.
    Local {
        r: Box<dyn Read + 'a>,
        to_hasher: Option<mpsc::SyncSender<(Arc<Vec<u8>>, usize)>>,
        returned: mpsc::Receiver<Arc<Vec<u8>>>,
        allocated: usize,
    },
    /// Decompressed by a helper thread; hashed here.
    Remote {
        rx: mpsc::Receiver<io::Result<(Arc<Vec<u8>>, usize)>>,
        ret: mpsc::Sender<Arc<Vec<u8>>>,
        hasher: Hasher,
        /// The decoder thread delivered the end of the stream.
        eof: bool,
    },
    Done,
}

/// The uncompressed tar stream: buffered, hashed and size-limited as it is read.
struct Input<'a> {
    source: Source<'a>,
    /// The current buffer; bytes `pos..end` are unread.
    buf: Arc<Vec<u8>>,
    pos: usize,
    end: usize,
    total: u64,
    max: u64,
}

fn read_error(total: u64, e: io::Error) -> Error {
    Error::Invalid(format!(
        "reading layer stream at uncompressed offset {total}: {e}"
    ))
}

impl Input<'_> {
    /// Makes bytes available; returns how many (0 at end of stream).
    fn fill(&mut self) -> Result<usize> {
        if self.pos < self.end {
            return Ok(self.end - self.pos);
        }
        let old = std::mem::replace(&mut self.buf, Arc::new(Vec::new()));
        let total = self.total;
        let (b, n) = match &mut self.source {
            Source::Local {
                r,
                to_hasher,
                returned,
                allocated,
            } => {
                drop(old); // the hasher may still hold it; it comes back through `returned`
                let back =
                    match returned.try_recv() {
                        Ok(b) => Some(b),
                        Err(_) if *allocated < POOL => None,
                        Err(_) => Some(returned.recv().map_err(|_| {
                            Error::Internal("the layer hashing thread stopped".into())
                        })?),
                    };
                let mut b = match back.map(Arc::try_unwrap) {
                    Some(Ok(v)) => v,
                    _ => {
                        *allocated += 1;
                        vec![0u8; READ_BUF]
                    }
                };
                let n = loop {
                    match r.read(&mut b) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(read_error(total, e)),
                    }
                };
                let b = Arc::new(b);
                if n > 0 {
                    let tx = to_hasher
                        .as_ref()
                        .ok_or_else(|| Error::Internal("layer hashing already finished".into()))?;
                    tx.send((Arc::clone(&b), n))
                        .map_err(|_| Error::Internal("the layer hashing thread stopped".into()))?;
                }
                (b, n)
            }
            Source::Remote {
                rx,
                ret,
                hasher,
                eof,
            } => {
                if !old.is_empty() {
                    let _ = ret.send(old);
                }
                match rx.recv() {
                    Ok(Ok((b, n))) => {
                        hasher.update(&b[..n]);
                        *eof = n == 0;
                        (b, n)
                    }
                    Ok(Err(e)) => return Err(read_error(total, e)),
                    Err(_) if *eof => (Arc::new(Vec::new()), 0),
                    Err(_) => {
                        return Err(Error::Internal(
                            "the layer decompression thread stopped".into(),
                        ))
                    }
                }
            }
            Source::Done => (Arc::new(Vec::new()), 0),
        };
        self.total += n as u64;
        if self.total > self.max {
            return Err(Error::Limit(format!(
                "layer exceeds the uncompressed size limit (max_uncompressed = {} bytes)",
                self.max
            )));
        }
        self.buf = b;
        self.pos = 0;
        self.end = n;
        Ok(n)
    }

    /// Fills `out` completely. Ok(false) if the stream ended before the first byte.
    fn read_exact(&mut self, out: &mut [u8]) -> Result<bool> {
        let mut off = 0;
        while off < out.len() {
            let avail = self.fill()?;
            if avail == 0 {
                if off == 0 {
                    return Ok(false);
                }
                return Err(self.truncated());
            }
            let n = avail.min(out.len() - off);
            out[off..off + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            off += n;
        }
        Ok(true)
    }

    /// Passes `n` bytes to `sink` (or drops them).
    fn copy(&mut self, mut n: u64, mut sink: Option<&mut File>, what: &[u8]) -> Result<()> {
        while n > 0 {
            let avail = self.fill()?;
            if avail == 0 {
                return Err(self.truncated());
            }
            let take = (avail as u64).min(n) as usize;
            if let Some(f) = sink.as_deref_mut() {
                f.write_all(&self.buf[self.pos..self.pos + take])
                    .map_err(|e| Error::io(show(what), e))?;
            }
            self.pos += take;
            n -= take as u64;
        }
        Ok(())
    }

    /// Reads everything up to the end of the stream (trailing zero blocks are part of the diff).
    fn drain(&mut self) -> Result<()> {
        loop {
            let avail = self.fill()?;
            if avail == 0 {
                return Ok(());
            }
            self.pos = self.end;
        }
    }

    fn truncated(&self) -> Error {
        Error::Invalid(format!(
            "layer tar is truncated (stream ended at uncompressed offset {})",
            self.total
        ))
    }
}

fn show(p: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(p))
}

fn pad(size: u64) -> u64 {
    (512 - size % 512) % 512
}

/// Parses a tar numeric field: octal ASCII (space/NUL padded) or GNU base-256.
fn parse_num(field: &[u8]) -> Option<u64> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            if first == 0xff {
                return None; // negative
            }
            let mut v: u64 = (first & 0x7f) as u64;
            for &b in &field[1..] {
                v = v.checked_mul(256)?.checked_add(b as u64)?;
            }
            return Some(v);
        }
    }
    let mut v: u64 = 0;
    let mut seen = false;
    for &b in field {
        match b {
            b' ' | 0 if !seen => continue,
            b' ' | 0 => break,
            b'0'..=b'7' => {
                seen = true;
                v = v.checked_mul(8)?.checked_add((b - b'0') as u64)?;
            }
            _ => return None,
        }
    }
    Some(v)
}

fn cstr_field(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

/// Parses a PAX decimal time ("1234", "1234.5", "-12.5") into (seconds, nanoseconds).
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let secs: i64 = int.parse().ok()?;
    let mut nanos: u32 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        let d = c.to_digit(10)?;
        nanos += d * 10u32.pow(8 - i as u32);
    }
    if secs < 0 && nanos > 0 {
        return Some((secs - 1, 1_000_000_000 - nanos));
    }
    Some((secs, nanos))
}

fn parse_dec(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
}

/// One entry's resolved header, with PAX/GNU overrides applied.
struct Header {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, u32),
    dev: (u32, u32),
}

/// Header records that apply to the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<(i64, u32)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.path.is_none()
            && self.link.is_none()
            && self.size.is_none()
            && self.uid.is_none()
            && self.gid.is_none()
            && self.mtime.is_none()
            && self.xattrs.is_empty()
    }
}

struct Extractor<'a, 'o> {
    input: Input<'a>,
    root: OwnedFd,
    dest: PathBuf,
    opts: &'o ApplyOptions,
    privileged: bool,
    /// The last parent directory opened (normalized path, fd).
    parent_cache: Option<(Vec<u8>, OwnedFd)>,
    /// Directories whose mode and times are applied at the end.
    dirs: Vec<(Vec<u8>, u32, (i64, u32))>,
    entries: u64,
}

const OPAQUE: &[u8] = b".wh..wh..opq";
const WH: &[u8] = b".wh.";

impl<'a, 'o> Extractor<'a, 'o> {
    fn new(
        source: Source<'a>,
        root: OwnedFd,
        dest: &Path,
        opts: &'o ApplyOptions,
        privileged: bool,
    ) -> Self {
        Extractor {
            input: Input {
                source,
                buf: Arc::new(Vec::new()),
                pos: 0,
                end: 0,
                total: 0,
                max: opts.limits.max_uncompressed,
            },
            root,
            dest: dest.to_path_buf(),
            opts,
            privileged,
            parent_cache: None,
            dirs: Vec::new(),
            entries: 0,
        }
    }

    fn applied(&self, diff_id: Digest) -> Applied {
        Applied {
            diff_id,
            uncompressed_size: self.input.total,
            entries: self.entries,
        }
    }

    fn run(&mut self) -> Result<()> {
        let mut hdr = [0u8; 512];
        let mut pending = Pending::default();
        let mut meta = Vec::new();
        let mut name = Vec::with_capacity(256);
        let mut link = Vec::with_capacity(256);
        let mut headers: u64 = 0;
        let mut pending_bytes: u64 = 0;
        loop {
            let offset = self.input.total - (self.input.end - self.input.pos) as u64;
            if !self.input.read_exact(&mut hdr)? {
                // EOF without end-of-archive blocks: accepted (some producers omit them).
                if !pending.is_empty() {
                    return Err(self.input.truncated());
                }
                break;
            }
            if hdr.iter().all(|&b| b == 0) {
                self.input.drain()?;
                break;
            }
            headers += 1;
            if headers
                > self
                    .opts
                    .limits
                    .max_entries
                    .saturating_mul(4)
                    .saturating_add(16)
            {
                return Err(Error::Limit(format!(
                    "layer has too many tar headers (max_entries = {})",
                    self.opts.limits.max_entries
                )));
            }
            verify_checksum(&hdr, offset)?;
            let typeflag = hdr[156];
            let raw_size = parse_num(&hdr[124..136]).ok_or_else(|| {
                Error::Invalid(format!("tar header at offset {offset}: bad size field"))
            })?;
            match typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    let size = raw_size;
                    // Records kept for the next entry add up: bound their sum, not just each.
                    let kept = if typeflag == b'g' { 0 } else { pending_bytes };
                    if size.saturating_add(kept) > self.opts.limits.max_header_bytes as u64 {
                        return Err(Error::Limit(format!(
                            "tar header record of {size} bytes at offset {offset} (after {kept} bytes of records for the same entry) exceeds max_header_bytes = {}",
                            self.opts.limits.max_header_bytes
                        )));
                    }
                    if typeflag != b'g' {
                        pending_bytes += size;
                    }
                    meta.clear();
                    meta.resize(size as usize, 0);
                    if !self.input.read_exact(&mut meta)? && size > 0 {
                        return Err(self.input.truncated());
                    }
                    self.input.copy(pad(size), None, b"")?;
                    match typeflag {
                        b'x' => parse_pax(&meta, &mut pending, offset)?,
                        b'g' => {} // global PAX records: nothing we honour
                        b'L' => pending.path = Some(cstr_field(&meta).to_vec()),
                        _ => pending.link = Some(cstr_field(&meta).to_vec()),
                    }
                    continue;
                }
                _ => {}
            }

            pending_bytes = 0;
            // The entry's name: PAX path > GNU long name > ustar prefix + name.
            name.clear();
            if let Some(p) = pending.path.take() {
                name.extend_from_slice(&p);
            } else {
                let posix = &hdr[257..263] == b"ustar\0";
                let prefix = cstr_field(&hdr[345..500]);
                if posix && !prefix.is_empty() {
                    name.extend_from_slice(prefix);
                    name.push(b'/');
                }
                name.extend_from_slice(cstr_field(&hdr[0..100]));
            }
            link.clear();
            match pending.link.take() {
                Some(l) => link.extend_from_slice(&l),
                None => link.extend_from_slice(cstr_field(&hdr[157..257])),
            }
            let size = pending.size.take().unwrap_or(raw_size);
            let trailing_slash = name.last() == Some(&b'/');
            let kind = match typeflag {
                b'0' | 0 | b'7' if trailing_slash => Kind::Dir,
                b'0' | 0 | b'7' => Kind::File,
                b'1' => Kind::HardLink,
                b'2' => Kind::Symlink,
                b'3' => Kind::Char,
                b'4' => Kind::Block,
                b'5' => Kind::Dir,
                b'6' => Kind::Fifo,
                other => {
                    return Err(Error::Invalid(format!(
                        "tar entry {}: unsupported entry type {:?}",
                        show(&name).display(),
                        other as char
                    )))
                }
            };
            self.entries += 1;
            if self.entries > self.opts.limits.max_entries {
                return Err(Error::Limit(format!(
                    "layer has more than max_entries = {} entries",
                    self.opts.limits.max_entries
                )));
            }
            let num = |r: std::ops::Range<usize>, what: &str| {
                parse_num(&hdr[r]).ok_or_else(|| {
                    Error::Invalid(format!(
                        "tar entry {}: bad {what} field",
                        show(&name).display()
                    ))
                })
            };
            let mode = num(100..108, "mode")? as u32 & 0o7777;
            let uid = match pending.uid.take() {
                Some(u) => u,
                None => num(108..116, "uid")?,
            };
            let gid = match pending.gid.take() {
                Some(g) => g,
                None => num(116..124, "gid")?,
            };
            let mtime = match pending.mtime.take() {
                Some(t) => t,
                None => (num(136..148, "mtime")?.min(i64::MAX as u64) as i64, 0),
            };
            let dev = if matches!(kind, Kind::Char | Kind::Block) {
                (
                    num(329..337, "devmajor")? as u32,
                    num(337..345, "devminor")? as u32,
                )
            } else {
                (0, 0)
            };
            let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
                return Err(Error::Invalid(format!(
                    "tar entry {}: uid/gid out of range",
                    show(&name).display()
                )));
            };
            let h = Header {
                kind,
                mode,
                uid,
                gid,
                // Data of entries other than regular files is skipped.
                size,
                mtime,
                dev,
            };
            let xattrs = std::mem::take(&mut pending.xattrs);
            let consumed = self.entry(&name, &link, &h, &xattrs)?;
            let skip = if consumed { 0 } else { h.size };
            self.input.copy(skip + pad(h.size), None, &name)?;
        }
        self.finish_dirs()
    }

    /// Applies one entry. Returns whether its data was consumed.
    fn entry(
        &mut self,
        raw: &[u8],
        raw_link: &[u8],
        h: &Header,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool> {
        let path = normalize(raw)?;
        if path.is_empty() {
            // The layer root itself ("./").
            if h.kind != Kind::Dir {
                return Err(Error::Invalid(format!(
                    "tar entry {}: the layer root must be a directory",
                    show(raw).display()
                )));
            }
            let root = self
                .root
                .try_clone()
                .map_err(|e| Error::io(&self.dest, e))?;
            self.dir_meta(root.as_fd(), &path, h, xattrs)?;
            return Ok(false);
        }
        let (parent, name) = split(&path);
        let plain = self.opts.plain;
        if let Some(r) = &self.opts.resolver {
            if r.0.is_mount_point(&path) {
                if h.kind == Kind::Dir {
                    // The mounted tree keeps its own owner and mode.
                    return Ok(false);
                }
                return Err(Error::Invalid(format!(
                    "tar entry {}: cannot replace a mount point (a volume or bind mount)",
                    show(raw).display()
                )));
            }
        }
        if !plain && parent.split(|&b| b == b'/').any(|c| c.starts_with(WH)) {
            return Err(Error::Invalid(format!(
                "tar entry {}: whiteout name used as a directory",
                show(raw).display()
            )));
        }
        let pfd = self.parent(parent, &path)?;
        let pfd = pfd.as_fd();

        if !plain && name.starts_with(WH) {
            if name == OPAQUE {
                rfs::fsetxattr(pfd, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                    .map_err(|e| errno(&path, "set the overlay opaque xattr (needs root)", e))?;
                return Ok(false);
            }
            let target = &name[WH.len()..];
            if target.is_empty() || target == b"." || target == b".." || target.starts_with(WH) {
                return Err(Error::Invalid(format!(
                    "tar entry {}: invalid whiteout name",
                    show(raw).display()
                )));
            }
            self.remove_existing(pfd, target, &path)?;
            rfs::mknodat(
                pfd,
                OsStr::from_bytes(target),
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(|e| errno(&path, "create the overlay whiteout (needs root)", e))?;
            return Ok(false);
        }
        let cname = OsStr::from_bytes(name);
        let existing = match rfs::statat(pfd, cname, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(FileType::from_raw_mode(st.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(errno(&path, "stat", e)),
        };
        if self.opts.no_overwrite_dir_non_dir {
            match existing {
                Some(FileType::Directory) if h.kind != Kind::Dir => {
                    return Err(Error::Invalid(format!(
                        "cannot overwrite directory {} with non-directory",
                        show(&path).display()
                    )))
                }
                Some(ft) if ft != FileType::Directory && h.kind == Kind::Dir => {
                    return Err(Error::Invalid(format!(
                        "cannot overwrite non-directory {} with directory",
                        show(&path).display()
                    )))
                }
                _ => {}
            }
        }
        let keep_dir = match (existing, h.kind) {
            (Some(FileType::Directory), Kind::Dir) => true,
            (None, _) => false,
            (Some(_), _) => {
                self.remove_existing(pfd, name, &path)?;
                // Anything cached under this path is gone now.
                self.parent_cache = None;
                false
            }
        };
        match h.kind {
            Kind::File => {
                let fd = rfs::openat(
                    pfd,
                    cname,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| errno(&path, "create file", e))?;
                let mut f = File::from(fd);
                self.input.copy(h.size, Some(&mut f), &path)?;
                self.owner(f.as_fd(), &path, h)?;
                rfs::fchmod(&f, Mode::from_raw_mode(h.mode))
                    .map_err(|e| errno(&path, "chmod", e))?;
                self.set_xattrs(f.as_fd(), &path, xattrs)?;
                rfs::futimens(&f, &times(h.mtime)).map_err(|e| errno(&path, "set times", e))?;
                Ok(true)
            }
            Kind::Dir => {
                if !keep_dir {
                    rfs::mkdirat(pfd, cname, Mode::from_raw_mode(0o700))
                        .map_err(|e| errno(&path, "mkdir", e))?;
                }
                let fd = rfs::openat(
                    pfd,
                    cname,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno(&path, "open directory", e))?;
                self.dir_meta(fd.as_fd(), &path, h, xattrs)?;
                Ok(false)
            }
            Kind::Symlink => {
                rfs::symlinkat(OsStr::from_bytes(raw_link), pfd, cname)
                    .map_err(|e| errno(&path, "symlink", e))?;
                self.parent_cache = None;
                if self.privileged {
                    rfs::chownat(
                        pfd,
                        cname,
                        Some(rfs::Uid::from_raw_unchecked(h.uid)),
                        Some(rfs::Gid::from_raw_unchecked(h.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| errno(&path, "chown symlink", e))?;
                }
                rfs::utimensat(pfd, cname, &times(h.mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| errno(&path, "set symlink times", e))?;
                Ok(false)
            }
            Kind::HardLink => {
                let target = normalize(raw_link)?;
                if target.is_empty() {
                    return Err(Error::Invalid(format!(
                        "tar entry {}: hardlink to the layer root",
                        show(raw).display()
                    )));
                }
                let (tparent, tname) = split(&target);
                let tfd = self.open_dir_in_root(tparent).map_err(|e| {
                    errno(
                        &path,
                        &format!("resolve hardlink target {}", show(raw_link).display()),
                        e,
                    )
                })?;
                rfs::linkat(&tfd, OsStr::from_bytes(tname), pfd, cname, AtFlags::empty()).map_err(
                    |e| {
                        errno(
                            &path,
                            &format!("hardlink to {}", show(raw_link).display()),
                            e,
                        )
                    },
                )?;
                Ok(false)
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                if h.kind != Kind::Fifo && !self.privileged {
                    if self.opts.devices_required {
                        return Err(Error::Invalid(format!(
                            "tar entry {}: device node {}:{} can't be created without root",
                            show(raw).display(),
                            h.dev.0,
                            h.dev.1
                        )));
                    }
                    tracing::debug!(entry = %show(raw).display(), "skipping device node (not root)");
                    return Ok(false);
                }
                let ft = match h.kind {
                    Kind::Char => FileType::CharacterDevice,
                    Kind::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                rfs::mknodat(
                    pfd,
                    cname,
                    ft,
                    Mode::empty(),
                    rfs::makedev(h.dev.0, h.dev.1),
                )
                .map_err(|e| errno(&path, "mknod", e))?;
                if self.privileged {
                    rfs::chownat(
                        pfd,
                        cname,
                        Some(rfs::Uid::from_raw_unchecked(h.uid)),
                        Some(rfs::Gid::from_raw_unchecked(h.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| errno(&path, "chown", e))?;
                }
                chmod_node(pfd, cname, h.mode).map_err(|e| errno(&path, "chmod", e))?;
                rfs::utimensat(pfd, cname, &times(h.mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| errno(&path, "set times", e))?;
                Ok(false)
            }
        }
    }

    fn dir_meta(
        &mut self,
        fd: BorrowedFd,
        path: &[u8],
        h: &Header,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<()> {
        self.owner(fd, path, h)?;
        self.set_xattrs(fd, path, xattrs)?;
        self.dirs.push((path.to_vec(), h.mode, h.mtime));
        Ok(())
    }

    fn owner(&self, fd: BorrowedFd, path: &[u8], h: &Header) -> Result<()> {
        if self.privileged {
            rfs::fchown(
                fd,
                Some(rfs::Uid::from_raw_unchecked(h.uid)),
                Some(rfs::Gid::from_raw_unchecked(h.gid)),
            )
            .map_err(|e| errno(path, "chown", e))?;
        }
        Ok(())
    }

    fn set_xattrs(&self, fd: BorrowedFd, path: &[u8], xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        for (name, value) in xattrs {
            let allowed = name.starts_with(b"user.") || name == b"security.capability";
            if !allowed {
                tracing::debug!(entry = %show(path).display(), xattr = %String::from_utf8_lossy(name), "dropping xattr");
                continue;
            }
            if name == b"security.capability" && !self.privileged {
                tracing::debug!(entry = %show(path).display(), "skipping security.capability (not root)");
                continue;
            }
            rfs::fsetxattr(fd, OsStr::from_bytes(name), value, XattrFlags::empty()).map_err(
                |e| {
                    errno(
                        path,
                        &format!("set xattr {}", String::from_utf8_lossy(name)),
                        e,
                    )
                },
            )?;
        }
        Ok(())
    }

    /// Opens `parent` (normalized, may be empty) inside the root, creating missing directories.
    fn parent(&mut self, parent: &[u8], path: &[u8]) -> Result<OwnedFd> {
        if let Some((p, fd)) = &self.parent_cache {
            if p.as_slice() == parent {
                return fd.try_clone().map_err(|e| Error::io(show(path), e));
            }
        }
        let fd = match self.open_dir_in_root(parent) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => self.create_parents(parent, path)?,
            Err(e) => return Err(errno(path, "open parent directory inside the layer", e)),
        };
        let dup = fd.try_clone().map_err(|e| Error::io(show(path), e))?;
        self.parent_cache = Some((parent.to_vec(), dup));
        Ok(fd)
    }

    fn open_dir_in_root(&self, rel: &[u8]) -> rustix::io::Result<OwnedFd> {
        if let Some(r) = &self.opts.resolver {
            return r
                .0
                .open_dir(rel)
                .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO));
        }
        let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
        loop {
            match rfs::openat2(
                &self.root,
                OsStr::from_bytes(rel),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                r => return r,
            }
        }
    }

    fn create_parents(&mut self, parent: &[u8], path: &[u8]) -> Result<OwnedFd> {
        let mut cur = self
            .root
            .try_clone()
            .map_err(|e| Error::io(show(path), e))?;
        let mut end = 0;
        for comp in parent.split(|&b| b == b'/') {
            end += comp.len();
            let prefix = &parent[..end];
            cur = match self.open_dir_in_root(prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(&cur, OsStr::from_bytes(comp), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(errno(prefix, "create parent directory", e)),
                    }
                    self.open_dir_in_root(prefix).map_err(|e| {
                        errno(
                            path,
                            &format!(
                                "parent {} does not resolve to a directory inside the layer",
                                show(prefix).display()
                            ),
                            e,
                        )
                    })?
                }
                Err(e) => return Err(errno(path, "open parent directory inside the layer", e)),
            };
            end += 1; // the '/'
        }
        Ok(cur)
    }

    /// Removes whatever is at `name` in `dir` without following symlinks.
    fn remove_existing(&mut self, dir: BorrowedFd, name: &[u8], path: &[u8]) -> Result<()> {
        let cname = OsStr::from_bytes(name);
        match rfs::statat(dir, cname, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(errno(path, "stat", e)),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                self.parent_cache = None;
                remove_tree(dir, name).map_err(|e| errno(path, "remove directory", e))
            }
            Ok(_) => {
                rfs::unlinkat(dir, cname, AtFlags::empty()).map_err(|e| errno(path, "remove", e))
            }
        }
    }

    fn finish_dirs(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        // Deepest first is not needed: futimens on a dir doesn't touch its parent.
        for (path, mode, mtime) in dirs.iter().rev() {
            let fd = if path.is_empty() {
                self.root
                    .try_clone()
                    .map_err(|e| Error::io(&self.dest, e))?
            } else {
                let (parent, name) = split(path);
                let pfd = match self.open_dir_in_root(parent) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) => continue,
                    Err(e) => return Err(errno(path, "reopen directory", e)),
                };
                match rfs::openat(
                    &pfd,
                    OsStr::from_bytes(name),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    // Replaced by a later entry (e.g. with a symlink): not ours to chmod.
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => continue,
                    Err(e) => return Err(errno(path, "reopen directory", e)),
                }
            };
            rfs::fchmod(&fd, Mode::from_raw_mode(*mode)).map_err(|e| errno(path, "chmod", e))?;
            rfs::futimens(&fd, &times(*mtime)).map_err(|e| errno(path, "set times", e))?;
        }
        Ok(())
    }
}

/// chmod of a device node or FIFO without following a symlink and without opening the device:
/// an `O_PATH | O_NOFOLLOW` fd is checked to be the node, then chmod'ed through its
/// `/proc/self/fd` entry (which names that inode, not a path).
fn chmod_node(dir: BorrowedFd, name: &OsStr, mode: u32) -> rustix::io::Result<()> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let ft = FileType::from_raw_mode(rfs::fstat(&fd)?.st_mode);
    if !matches!(
        ft,
        FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo
    ) {
        return Err(Errno::PERM);
    }
    rfs::chmod(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        Mode::from_raw_mode(mode),
    )
}

fn remove_tree(dir: BorrowedFd, name: &[u8]) -> rustix::io::Result<()> {
    let cname = OsStr::from_bytes(name);
    let fd = rfs::openat(
        dir,
        cname,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut children = Vec::new();
    for ent in rfs::Dir::read_from(&fd)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        children.push((n.to_vec(), ent.file_type()));
    }
    for (n, ft) in children {
        let is_dir = match ft {
            FileType::Directory => true,
            FileType::Unknown => {
                let st = rfs::statat(&fd, OsStr::from_bytes(&n), AtFlags::SYMLINK_NOFOLLOW)?;
                FileType::from_raw_mode(st.st_mode) == FileType::Directory
            }
            _ => false,
        };
        if is_dir {
            remove_tree(fd.as_fd(), &n)?;
        } else {
            rfs::unlinkat(&fd, OsStr::from_bytes(&n), AtFlags::empty())?;
        }
    }
    rfs::unlinkat(dir, cname, AtFlags::REMOVEDIR)
}

fn times(t: (i64, u32)) -> Timestamps {
    let ts = Timespec {
        tv_sec: t.0,
        tv_nsec: t.1 as _,
    };
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

fn errno(path: &[u8], what: &str, e: Errno) -> Error {
    let io: io::Error = e.into();
    Error::io(
        show(path),
        io::Error::new(io.kind(), format!("{what}: {io}")),
    )
}

/// Normalizes an entry name: leading `/` and `.` components dropped, empty components dropped,
/// `..` refused. Returns "a/b/c" (empty for the root).
fn normalize(raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => continue,
            b".." => {
                return Err(Error::Invalid(format!(
                    "tar entry {}: path contains '..'",
                    show(raw).display()
                )))
            }
            c => {
                if c.contains(&0) {
                    return Err(Error::Invalid(format!(
                        "tar entry {}: NUL in path",
                        show(raw).display()
                    )));
                }
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn verify_checksum(hdr: &[u8; 512], offset: u64) -> Result<()> {
    let want = parse_num(&hdr[148..156]);
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in hdr.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += (b as i8) as i64;
    }
    match want {
        Some(w) if w == unsigned || w as i64 == signed => Ok(()),
        _ => Err(Error::Invalid(format!(
            "tar header at uncompressed offset {offset}: bad checksum (not a tar stream, or corrupt)"
        ))),
    }
}

/// Parses PAX extended header records ("<len> <key>=<value>\n").
fn parse_pax(mut data: &[u8], p: &mut Pending, offset: u64) -> Result<()> {
    let bad = |why: &str| Error::Invalid(format!("PAX header at offset {offset}: {why}"));
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("record without length"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad record length"))?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad("record length out of range"));
        }
        let rec = &data[sp + 1..len - 1];
        data = &data[len..];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("record without '='"))?;
        let (k, v) = (&rec[..eq], &rec[eq + 1..]);
        match k {
            b"path" => p.path = Some(v.to_vec()),
            b"linkpath" => p.link = Some(v.to_vec()),
            b"size" => p.size = Some(parse_dec(v).ok_or_else(|| bad("bad size"))?),
            b"uid" => p.uid = Some(parse_dec(v).ok_or_else(|| bad("bad uid"))?),
            b"gid" => p.gid = Some(parse_dec(v).ok_or_else(|| bad("bad gid"))?),
            b"mtime" => p.mtime = Some(parse_pax_time(v).ok_or_else(|| bad("bad mtime"))?),
            _ => {
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    p.xattrs.push((name.to_vec(), v.to_vec()));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_num(b"0000644\0"), Some(0o644));
        assert_eq!(parse_num(b"   644 \0"), Some(0o644));
        assert_eq!(parse_num(b"\0\0\0\0"), Some(0));
        assert_eq!(parse_num(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(parse_num(&[0xff, 0xff]), None);
        assert_eq!(parse_num(b"0009"), None);
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time(b"-1.5"), Some((-2, 500_000_000)));
    }

    #[test]
    fn normalizing() {
        assert_eq!(normalize(b"/etc//x/./y/").unwrap(), b"etc/x/y");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert!(normalize(b"a/../../x").is_err());
        assert!(normalize(b"../x").is_err());
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
    }

    #[test]
    fn media_types() {
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip")
                .unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Compression::Zstd
        );
        let e = Compression::from_media_type("application/x-foo").unwrap_err();
        assert!(e.to_string().contains("application/x-foo"));
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
    }
}
