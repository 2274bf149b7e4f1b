//! `Buf`: a byte queue with a moving start, the read and write buffers of a stream and of
//! a TLS pump. Bottom layer of the crate: it depends on no other module (see the layer
//! list in the crate docs).

use alloc::vec::Vec;

/// A byte queue with a moving start (cheap consumption from the front).
#[derive(Default)]
pub(crate) struct Buf {
    data: Vec<u8>,
    start: usize,
}

impl Buf {
    pub(crate) fn len(&self) -> usize {
        self.data.len() - self.start
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.data[self.start..]
    }
    pub(crate) fn extend(&mut self, b: &[u8]) {
        if self.start > 0 && self.start >= self.data.len() / 2 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(b);
    }
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }
    pub(crate) fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.len());
        let v = self.data[self.start..self.start + n].to_vec();
        self.consume(n);
        v
    }
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Buf;

    #[test]
    fn buf_consumes_from_the_front_and_compacts() {
        let mut b = Buf::default();
        b.extend(b"hello world");
        assert_eq!(b.take(6), b"hello ");
        assert_eq!(b.as_slice(), b"world");
        b.extend(b"!");
        assert_eq!(b.len(), 6);
        b.consume(100);
        assert!(b.is_empty());
        for i in 0..1000u32 {
            b.extend(&i.to_le_bytes());
            b.consume(2);
        }
        assert_eq!(b.len(), 2000);
        assert!(b.data.len() <= 4000, "the consumed prefix is reclaimed");
    }
}
