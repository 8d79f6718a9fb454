//! The ELF reader (`inspect::elf`) and the format sniffer (`inspect::sniff`) on arbitrary files.
//!
//! Input: three control bytes, then the file. Byte 0 picks how much of the file the caller
//! hands in as `header` (the checks read 4096; shorter headers make the reader complete the ELF
//! header from the file), byte 1 makes the file claim to be larger than its bytes (a sparse
//! tail of zeros, up to 2^40 bytes, as a 2 GB binary would), byte 2 caps how many bytes one
//! `read_at` returns (short reads) and the program header limit of an older kernel.
//!
//! Properties: no panic; the reads stay within the documented bound (the rest of the ELF
//! header, at most 64 KiB of program headers, at most `PATH_MAX` of `PT_INTERP`) whatever the
//! file claims; `sniff` says ELF exactly when `parse` finds the magic.
#![no_main]

use std::cell::Cell;
use std::io;

use execguard::inspect::elf::{self, MAX_PHDR_TABLE, PATH_MAX, ReadAt};
use execguard::inspect::sniff::{self, Format};
use libfuzzer_sys::fuzz_target;

/// A file whose bytes are `data` followed by zeros up to `size`, counting what is read.
struct FakeFile<'a> {
    data: &'a [u8],
    size: u64,
    chunk: usize,
    calls: Cell<u64>,
    bytes: Cell<u64>,
    largest: Cell<usize>,
}

impl ReadAt for FakeFile<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.calls.set(self.calls.get() + 1);
        self.largest.set(self.largest.get().max(buf.len()));
        if offset >= self.size {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(self.chunk)
            .min(usize::try_from(self.size - offset).unwrap_or(usize::MAX));
        for (i, b) in buf.iter_mut().take(n).enumerate() {
            let at = usize::try_from(offset).ok().and_then(|o| o.checked_add(i));
            *b = at.and_then(|a| self.data.get(a)).copied().unwrap_or(0);
        }
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

fuzz_target!(|input: &[u8]| {
    let (ctl, data) = input.split_at(input.len().min(3));
    let ctl = |i: usize| ctl.get(i).copied().unwrap_or(0);
    let header_len = match ctl(0) % 8 {
        0 => 0,
        1 => 3,
        2 => 52,
        3 => 63,
        4 => 256,
        _ => 4096,
    };
    let header = data.get(..header_len).unwrap_or(data);
    let sparse = match ctl(1) {
        0..=191 => 0,
        b => 1u64 << (b % 41),
    };
    let file = FakeFile {
        data,
        size: data.len() as u64 + sparse,
        chunk: match ctl(2) % 4 {
            0 => usize::MAX,
            1 => 1,
            2 => 7,
            _ => 4096,
        },
        calls: Cell::new(0),
        bytes: Cell::new(0),
        largest: Cell::new(0),
    };
    let limit = match ctl(2) / 64 {
        0 => MAX_PHDR_TABLE,
        1 => elf::phdr_table_limit("6.1.0-18-amd64", 4096),
        2 => elf::phdr_table_limit("5.10.0", 65536),
        _ => elf::phdr_table_limit("6.18.44-fc", 16384),
    };

    let info = elf::parse_with_limit(header, &file, limit);

    // At most: the rest of the 64-byte ELF header, one program header table, one PT_INTERP.
    let bound = 64 + MAX_PHDR_TABLE + PATH_MAX;
    assert!(
        file.bytes.get() <= bound,
        "read {} bytes, more than {bound}",
        file.bytes.get()
    );
    assert!(
        file.largest.get() as u64 <= MAX_PHDR_TABLE,
        "one read asked for {} bytes",
        file.largest.get()
    );
    if file.chunk == usize::MAX {
        // Whole reads: the ELF header, the program headers, PT_INTERP, plus one EOF each.
        assert!(file.calls.get() <= 6, "{} reads", file.calls.get());
    }

    let size = file.size.max(header.len() as u64);
    let format = sniff::sniff(header, size);
    if header.len() >= 4 {
        assert_eq!(
            format == Format::Elf,
            info.is_some(),
            "sniff says {format:?}, parse says {info:?}"
        );
    }
    if let Some(info) = &info {
        let _ = elf::describe(info);
        let _ = elf::arch_name(info.class, info.endian, info.machine);
        let _ = elf::machine_name(info.machine);
        if let Some(d) = &info.defect {
            let _ = d.to_string();
            let _ = d.errno();
        }
        if let Some(interp) = &info.interp {
            assert!(
                interp.len() as u64 <= PATH_MAX,
                "interp of {} bytes",
                interp.len()
            );
        }
    }
    if let Format::Text(flaws) = &format {
        let _ = flaws.any();
    }
    // The sniffer alone, on the whole input as header (it looks at 4096 bytes at most).
    let _ = sniff::sniff(data, data.len() as u64);
});
