//! The canonical byte encoding: big-endian integers, length-prefixed strings.

use crate::ChainError;

/// Where encoded bytes go: a buffer, or straight into a hash.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for sha2::Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        sha2::Digest::update(self, bytes);
    }
}

/// Writes the canonical encoding into any sink.
pub(crate) struct Enc<'a, S: Sink>(pub &'a mut S);

impl<S: Sink> Enc<'_, S> {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.put(&[v]);
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.put(&v.to_be_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.put(v);
        self
    }
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.0.put(&(v.len() as u32).to_be_bytes());
        self.0.put(v.as_bytes());
        self
    }
}

#[derive(Default)]
pub(crate) struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.u32(v.len() as u32);
        self.bytes(v.as_bytes())
    }
}

pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ChainError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| ChainError::Malformed("truncated".into()))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], ChainError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, ChainError> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, ChainError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, ChainError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, ChainError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    pub fn str(&mut self, max: usize) -> Result<String, ChainError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(ChainError::Malformed(format!("string of {len} bytes (limit {max})")));
        }
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| ChainError::Malformed("string is not UTF-8".into()))
    }
    pub fn done(&self) -> Result<(), ChainError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(ChainError::Malformed(format!("{} trailing bytes", self.data.len() - self.pos)))
        }
    }
}
