//! How inputs and outputs become journal payloads. Values pass through
//! `serde_json::Value`, so a codec is a plain object the store can hold
//! without knowing any step's type.

use std::fmt;

/// Turns a step's value into bytes and back.
///
/// ```
/// use workflow_runtime::durable::{Codec, Json};
/// let bytes = Json.encode(&serde_json::json!({"id": 42})).unwrap();
/// assert_eq!(bytes, br#"{"id":42}"#);
/// assert_eq!(Json.decode(&bytes).unwrap()["id"], 42);
/// ```
pub trait Codec: Send + Sync + 'static {
    /// A short name, for messages.
    fn name(&self) -> &'static str;
    /// Encodes a value.
    fn encode(&self, value: &serde_json::Value) -> Result<Vec<u8>, CodecError>;
    /// Decodes what [`encode`](Self::encode) made.
    fn decode(&self, bytes: &[u8]) -> Result<serde_json::Value, CodecError>;
}

/// The default codec: JSON text, readable with the `sqlite3` tool.
///
/// ```
/// use workflow_runtime::durable::{Codec, Json};
/// assert_eq!(Json.name(), "json");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl Codec for Json {
    fn name(&self) -> &'static str {
        "json"
    }
    fn encode(&self, value: &serde_json::Value) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(CodecError::new)
    }
    fn decode(&self, bytes: &[u8]) -> Result<serde_json::Value, CodecError> {
        serde_json::from_slice(bytes).map_err(CodecError::new)
    }
}

/// A value the codec could not encode or decode.
///
/// ```
/// use workflow_runtime::durable::{Codec, Json};
/// let err = Json.decode(b"{not json").unwrap_err();
/// assert!(err.to_string().starts_with("key must be a string"));
/// ```
#[derive(Debug)]
pub struct CodecError(Box<dyn std::error::Error + Send + Sync>);

impl CodecError {
    /// Wraps the codec's own error.
    ///
    /// ```
    /// use workflow_runtime::durable::CodecError;
    /// let err = CodecError::new(std::fmt::Error);
    /// assert_eq!(err.to_string(), "an error occurred when formatting an argument");
    /// ```
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        CodecError(error.into())
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Encodes a typed value with `codec` (through `serde_json::Value`).
pub fn encode<T: serde::Serialize>(codec: &dyn Codec, value: &T) -> Result<Vec<u8>, CodecError> {
    let value = serde_json::to_value(value).map_err(CodecError::new)?;
    codec.encode(&value)
}

/// Decodes a typed value with `codec` (through `serde_json::Value`).
pub fn decode<T: serde::de::DeserializeOwned>(
    codec: &dyn Codec,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let value = codec.decode(bytes)?;
    serde_json::from_value(value).map_err(CodecError::new)
}

/// Encodes a `T`: what a durable workflow's check trait hands the
/// journal for one step's output.
pub type EncodeFn<T> = fn(&dyn Codec, &T) -> Result<Vec<u8>, CodecError>;
/// Decodes a `T`; see [`EncodeFn`].
pub type DecodeFn<T> = fn(&dyn Codec, &[u8]) -> Result<T, CodecError>;

/// How one type goes to and from the journal. `#[workflow(durable)]`
/// makes one per journaled value through a check that names the step
/// when the type is not serde's, so the journal itself needs no bounds.
pub struct ValueCodec<T> {
    encode: EncodeFn<T>,
    decode: DecodeFn<T>,
}

impl<T> ValueCodec<T> {
    /// From the two functions.
    pub const fn new(encode: EncodeFn<T>, decode: DecodeFn<T>) -> Self {
        ValueCodec { encode, decode }
    }

    /// Encodes `value` with `codec`.
    pub fn encode(&self, codec: &dyn Codec, value: &T) -> Result<Vec<u8>, CodecError> {
        (self.encode)(codec, value)
    }

    /// Decodes `bytes` with `codec`.
    pub fn decode(&self, codec: &dyn Codec, bytes: &[u8]) -> Result<T, CodecError> {
        (self.decode)(codec, bytes)
    }
}

impl<T> ValueCodec<T> {
    /// The codec of a workflow whose `#[workflow]` reported an error at
    /// compile time: never called, as the crate does not build.
    #[doc(hidden)]
    pub const fn unreachable() -> Self {
        fn encode<T>(_: &dyn Codec, _: &T) -> Result<Vec<u8>, CodecError> {
            unreachable!("`#[workflow]` reported an error at compile time")
        }
        fn decode<T>(_: &dyn Codec, _: &[u8]) -> Result<T, CodecError> {
            unreachable!("`#[workflow]` reported an error at compile time")
        }
        ValueCodec::new(encode::<T>, decode::<T>)
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> ValueCodec<T> {
    /// serde's.
    pub const fn serde() -> Self {
        ValueCodec::new(encode::<T>, decode::<T>)
    }
}

impl<T> Clone for ValueCodec<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ValueCodec<T> {}

impl<T> fmt::Debug for ValueCodec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ValueCodec")
    }
}
