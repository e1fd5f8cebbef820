//! An owned packet buffer with XDP-style headroom.
//!
//! A [`PacketBuf`] keeps [`HEADROOM`] bytes free in front of the frame (like the kernel's
//! `XDP_PACKET_HEADROOM`), so pushing a VLAN tag or an extension's `bpf_xdp_adjust_head`
//! moves only the frame's start, never the payload. A buffer is reused across packets
//! ([`PacketBuf::load`]): once it has grown to the largest frame seen, receiving a packet
//! allocates nothing.

/// Bytes kept free in front of a freshly loaded frame (the kernel's `XDP_PACKET_HEADROOM`).
pub const HEADROOM: usize = 256;
/// Bytes guaranteed free after a freshly loaded frame (room for `bpf_xdp_adjust_tail`).
pub const TAILROOM: usize = 256;
/// Tailroom reserved by [`PacketBuf::new`] beyond a standard 1518-byte frame.
const DEFAULT_CAPACITY: usize = HEADROOM + 2048;

/// Why a buffer operation was refused. Cheap to copy; never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BufError {
    /// Not enough headroom in front of the frame.
    #[error("not enough headroom: wanted {wanted} bytes, have {have}")]
    NoHeadroom {
        /// Bytes requested.
        wanted: usize,
        /// Bytes available.
        have: usize,
    },
    /// The frame is shorter than the bytes to remove.
    #[error("frame too short: wanted {wanted} bytes, have {have}")]
    TooShort {
        /// Bytes requested.
        wanted: usize,
        /// Bytes in the frame.
        have: usize,
    },
}

/// An owned frame with headroom and tailroom. See the module documentation.
///
/// Invariant: `start <= end <= buf.len()`. Every method keeps it (the storage only grows,
/// and [`PacketBuf::set_bounds`] refuses bounds outside it), so the frame's accessors, run
/// several times per packet, index without checking.
#[derive(Clone, PartialEq, Eq)]
pub struct PacketBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for PacketBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("headroom", &self.start)
            .field("len", &self.len())
            .finish()
    }
}

impl PacketBuf {
    /// An empty buffer with room for a standard frame after the headroom.
    pub fn new() -> PacketBuf {
        Self::with_capacity(DEFAULT_CAPACITY - HEADROOM)
    }

    /// An empty buffer with room for a frame of `frame_capacity` bytes after the headroom.
    pub fn with_capacity(frame_capacity: usize) -> PacketBuf {
        PacketBuf {
            buf: vec![0; HEADROOM + frame_capacity],
            start: HEADROOM,
            end: HEADROOM,
        }
    }

    /// A buffer holding a copy of `frame`.
    pub fn from_slice(frame: &[u8]) -> PacketBuf {
        let mut b = Self::with_capacity((frame.len() + TAILROOM).max(DEFAULT_CAPACITY - HEADROOM));
        b.load(frame);
        b
    }

    /// Replaces the contents with a copy of `frame`, restoring the full headroom and at least
    /// [`TAILROOM`] bytes of tailroom. Allocates only if `frame` is longer than any frame this
    /// buffer held before.
    #[inline]
    pub fn load(&mut self, frame: &[u8]) {
        let need = HEADROOM + frame.len();
        if self.buf.len() < need + TAILROOM {
            self.buf.resize(need + TAILROOM, 0);
        }
        self.start = HEADROOM;
        self.end = need;
        self.buf[HEADROOM..need].copy_from_slice(frame);
    }

    /// Empties the buffer, restoring the full headroom.
    pub fn clear(&mut self) {
        self.start = HEADROOM;
        self.end = HEADROOM;
    }

    /// The frame.
    #[inline]
    pub fn data(&self) -> &[u8] {
        debug_assert!(self.start <= self.end && self.end <= self.buf.len());
        // SAFETY: the type's invariant, `start <= end <= buf.len()`.
        unsafe { self.buf.get_unchecked(self.start..self.end) }
    }

    /// The frame, mutably.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        debug_assert!(self.start <= self.end && self.end <= self.buf.len());
        // SAFETY: the type's invariant, `start <= end <= buf.len()`.
        unsafe { self.buf.get_unchecked_mut(self.start..self.end) }
    }

    /// Frame length.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the frame is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes free in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Bytes free after the frame without reallocating.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.end
    }

    /// Grows the frame at the front by `n` bytes (contents unspecified) and returns them.
    pub fn push_head(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        if n > self.start {
            return Err(BufError::NoHeadroom {
                wanted: n,
                have: self.start,
            });
        }
        self.start -= n;
        Ok(&mut self.buf[self.start..self.start + n])
    }

    /// Removes `n` bytes from the front of the frame.
    pub fn pull_head(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.len() {
            return Err(BufError::TooShort {
                wanted: n,
                have: self.len(),
            });
        }
        self.start += n;
        Ok(())
    }

    /// Grows the frame at the end by `n` zero bytes (reallocating if the tailroom is short)
    /// and returns them.
    pub fn extend_tail(&mut self, n: usize) -> &mut [u8] {
        let new_end = self.end + n;
        if new_end > self.buf.len() {
            self.buf.resize(new_end, 0);
        }
        let old = self.end;
        self.end = new_end;
        let t = &mut self.buf[old..new_end];
        t.fill(0);
        t
    }

    /// Removes `n` bytes from the end of the frame.
    pub fn trim_tail(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.len() {
            return Err(BufError::TooShort {
                wanted: n,
                have: self.len(),
            });
        }
        self.end -= n;
        Ok(())
    }

    /// Truncates the frame to `len` bytes (no effect if it is shorter).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.end = self.start + len;
        }
    }

    /// The whole backing storage with the frame's bounds `(start, end)`, as an XDP program
    /// sees `data_hard_start`, `data` and `data_end`.
    pub fn raw_parts_mut(&mut self) -> (&mut [u8], usize, usize) {
        (&mut self.buf, self.start, self.end)
    }

    /// Sets the frame's bounds within the backing storage (after an extension moved
    /// `data`/`data_end`). Refused unless `start <= end <= storage length`.
    pub fn set_bounds(&mut self, start: usize, end: usize) -> Result<(), BufError> {
        if start > end || end > self.buf.len() {
            return Err(BufError::TooShort {
                wanted: end,
                have: self.buf.len(),
            });
        }
        self.start = start;
        self.end = end;
        Ok(())
    }
}

impl AsRef<[u8]> for PacketBuf {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl AsMut<[u8]> for PacketBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pull_keep_payload_in_place() {
        let mut b = PacketBuf::from_slice(&[1, 2, 3, 4]);
        let p = b.data().as_ptr();
        b.push_head(4).unwrap().copy_from_slice(&[9, 9, 9, 9]);
        assert_eq!(b.data(), &[9, 9, 9, 9, 1, 2, 3, 4]);
        assert_eq!(b.headroom(), HEADROOM - 4);
        b.pull_head(4).unwrap();
        assert_eq!(b.data().as_ptr(), p);
        assert!(matches!(
            b.push_head(HEADROOM + 1),
            Err(BufError::NoHeadroom { .. })
        ));
        assert!(matches!(b.pull_head(5), Err(BufError::TooShort { .. })));
        b.extend_tail(2);
        assert_eq!(b.data(), &[1, 2, 3, 4, 0, 0]);
        b.trim_tail(3).unwrap();
        assert_eq!(b.data(), &[1, 2, 3]);
    }

    #[test]
    fn load_reuses_storage() {
        let mut b = PacketBuf::new();
        b.load(&[0u8; 1500]);
        let p = b.data().as_ptr();
        b.push_head(10).unwrap();
        b.load(&[1u8; 60]);
        assert_eq!(b.data().as_ptr(), p);
        assert_eq!(b.len(), 60);
        assert_eq!(b.headroom(), HEADROOM);
        b.load(&[2u8; 5000]);
        assert!(b.tailroom() >= TAILROOM);
        assert_eq!(PacketBuf::from_slice(&[0; 9000]).tailroom(), TAILROOM);
    }
}
