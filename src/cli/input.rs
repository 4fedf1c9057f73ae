//! Bounded reading of token JSON (from a file, stdin, or a refresher's
//! stdout) into one zeroized buffer that never reallocates.

use std::io::{ErrorKind, Read};

use zeroize::Zeroizing;

/// The largest token JSON accepted: 1 MiB. Larger input is refused before parsing.
pub const MAX_INPUT: usize = 1 << 20;

/// Why a bounded read failed.
#[derive(Debug)]
pub enum ReadError {
    /// More than [`MAX_INPUT`] bytes.
    TooLarge,
    /// The read itself failed.
    Io(std::io::Error),
}

/// Read all of `r`, at most [`MAX_INPUT`] bytes.
///
/// The buffer is allocated once with capacity `MAX_INPUT + 1` and filled in
/// place, so no partial copy is ever left behind by a reallocation; it is
/// zeroized (whole capacity) on drop. Reading stops after `MAX_INPUT + 1`
/// bytes: the rest of an oversized input is never read.
pub fn read_bounded(r: &mut impl Read) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_INPUT + 1));
    // Within capacity: no reallocation.
    buf.resize(MAX_INPUT + 1, 0);
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    if filled > MAX_INPUT {
        return Err(ReadError::TooLarge);
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_bound_and_refuses_more() {
        let exact = vec![b'x'; MAX_INPUT];
        let got = read_bounded(&mut exact.as_slice()).unwrap();
        assert_eq!(got.len(), MAX_INPUT);
        assert_eq!(got.capacity(), MAX_INPUT + 1, "never reallocated");
        let over = vec![b'x'; MAX_INPUT + 1];
        assert!(matches!(
            read_bounded(&mut over.as_slice()),
            Err(ReadError::TooLarge)
        ));
        assert_eq!(read_bounded(&mut &b""[..]).unwrap().len(), 0);
    }
}
