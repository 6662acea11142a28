//! Recognising the data disk's filesystem from its first 2 KiB.

/// Bytes to read from the start of the device for [`has_ext_superblock`].
pub const PROBE_BYTES: usize = 2048;

/// Whether `head` (the device's first bytes) holds an ext2/3/4 superblock: the magic 0xEF53,
/// little-endian, at byte 56 of the superblock, which starts at byte 1024.
pub fn has_ext_superblock(head: &[u8]) -> bool {
    head.get(1024 + 56..1024 + 58) == Some(&[0x53, 0xEF][..])
}

/// What e2fsck's exit status means for the boot (see e2fsck(8)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsckOutcome {
    /// 0: clean.
    Clean,
    /// 1 or 2: errors were corrected.
    Corrected,
    /// 4: errors left uncorrected (`-p` refused to fix them).
    Uncorrected,
    /// 8 or more, or killed: e2fsck itself failed.
    Failed,
}

pub fn fsck_outcome(code: Option<i32>) -> FsckOutcome {
    match code {
        Some(0) => FsckOutcome::Clean,
        Some(c) if c & !3 == 0 => FsckOutcome::Corrected,
        Some(c) if c & 4 != 0 && c < 8 => FsckOutcome::Uncorrected,
        _ => FsckOutcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_magic() {
        let mut b = vec![0u8; PROBE_BYTES];
        assert!(!has_ext_superblock(&b));
        b[1080] = 0x53;
        b[1081] = 0xEF;
        assert!(has_ext_superblock(&b));
        assert!(!has_ext_superblock(&b[..1081]), "short read is not ext");
        b[1080] = 0xEF;
        b[1081] = 0x53;
        assert!(!has_ext_superblock(&b), "big-endian magic is not ext");
    }

    #[test]
    fn fsck_codes() {
        assert_eq!(fsck_outcome(Some(0)), FsckOutcome::Clean);
        assert_eq!(fsck_outcome(Some(1)), FsckOutcome::Corrected);
        assert_eq!(fsck_outcome(Some(2)), FsckOutcome::Corrected);
        assert_eq!(fsck_outcome(Some(4)), FsckOutcome::Uncorrected);
        assert_eq!(fsck_outcome(Some(5)), FsckOutcome::Uncorrected);
        assert_eq!(fsck_outcome(Some(8)), FsckOutcome::Failed);
        assert_eq!(fsck_outcome(Some(12)), FsckOutcome::Failed);
        assert_eq!(fsck_outcome(None), FsckOutcome::Failed);
    }
}
