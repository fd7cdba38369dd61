//! AMF0 (Adobe Action Message Format, version 0): the encoding of RTMP command and data
//! message bodies. [`Amf0Value`] is a small owned tree; [`decode_all`] reads one message's
//! values under [`AmfLimits`], [`Amf0Value::encode`] writes them.

use crate::AmfError;

const MARKER_NUMBER: u8 = 0x00;
const MARKER_BOOLEAN: u8 = 0x01;
const MARKER_STRING: u8 = 0x02;
const MARKER_OBJECT: u8 = 0x03;
const MARKER_NULL: u8 = 0x05;
const MARKER_UNDEFINED: u8 = 0x06;
const MARKER_ECMA_ARRAY: u8 = 0x08;
const MARKER_OBJECT_END: u8 = 0x09;
const MARKER_STRICT_ARRAY: u8 = 0x0A;
const MARKER_DATE: u8 = 0x0B;
const MARKER_LONG_STRING: u8 = 0x0C;

/// The longest string that fits the short (16-bit length) form; longer ones are written as
/// long strings, and longer property names cannot be written at all.
pub const AMF0_SHORT_STRING_MAX_BYTES: usize = u16::MAX as usize;

/// One AMF0 value (AMF0 specification §2).
///
/// Strings are decoded as UTF-8, with invalid sequences replaced by U+FFFD: names and metadata
/// are for logs and routing, and an encoder that writes Latin-1 into its metadata should not
/// lose its stream for it. Short and long strings decode to the same variant;
/// [`encode`](Self::encode) picks the form by length. The object-end marker is not a value: it
/// ends an object or ECMA array.
#[derive(Clone, Debug, PartialEq)]
pub enum Amf0Value {
    /// A number (marker 0): an IEEE 754 double.
    Number(f64),
    /// A boolean (marker 1).
    Boolean(bool),
    /// A string (marker 2) or long string (marker 12).
    String(String),
    /// An anonymous object (marker 3): named properties in the order sent.
    Object(Amf0Object),
    /// Null (marker 5).
    Null,
    /// Undefined (marker 6).
    Undefined,
    /// An ECMA (associative) array (marker 8): named properties, like an object. The count
    /// that precedes them is only a hint and is not kept; encoders disagree about it.
    EcmaArray(Amf0Object),
    /// A strict array (marker 10): values by index.
    StrictArray(Vec<Amf0Value>),
    /// A date (marker 11).
    Date {
        /// Milliseconds since the Unix epoch, UTC.
        unix_ms: f64,
        /// The time zone offset in minutes; the specification says senders should write 0.
        timezone_min: i16,
    },
}

/// The properties of an AMF0 object or ECMA array, in the order sent.
///
/// Lookups are linear: real objects have a few dozen properties at most, and the decoder's
/// value cap bounds the rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Amf0Object {
    properties: Vec<(String, Amf0Value)>,
}

/// Caps on decoding one message's AMF0 values; see
/// [`SessionConfig`](crate::SessionConfig) for the defaults and their cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmfLimits {
    /// How deep objects and arrays may nest: values at the top of a message are at depth 1,
    /// the properties of a top-level object at depth 2.
    pub depth_max: usize,
    /// The most values in one message, nested ones included.
    pub values_max: usize,
}

impl Amf0Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The properties, if this is an object or an ECMA array (senders use either for the
    /// same purpose: ffmpeg writes `onMetaData` as an ECMA array, OBS as an object).
    pub fn as_object(&self) -> Option<&Amf0Object> {
        match self {
            Amf0Value::Object(o) | Amf0Value::EcmaArray(o) => Some(o),
            _ => None,
        }
    }

    /// Appends the AMF0 encoding of this value to `out`.
    ///
    /// # Panics
    ///
    /// If an object property name is longer than [`AMF0_SHORT_STRING_MAX_BYTES`] (AMF0 has
    /// no form for it), or a string or array is longer than `u32::MAX`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Amf0Value::Number(n) => {
                out.push(MARKER_NUMBER);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Amf0Value::Boolean(b) => out.extend_from_slice(&[MARKER_BOOLEAN, u8::from(*b)]),
            Amf0Value::String(s) => write_string(out, s),
            Amf0Value::Object(o) => {
                out.push(MARKER_OBJECT);
                o.encode_properties(out);
            }
            Amf0Value::Null => out.push(MARKER_NULL),
            Amf0Value::Undefined => out.push(MARKER_UNDEFINED),
            Amf0Value::EcmaArray(o) => {
                out.push(MARKER_ECMA_ARRAY);
                out.extend_from_slice(&len_u32(o.len()).to_be_bytes());
                o.encode_properties(out);
            }
            Amf0Value::StrictArray(values) => {
                out.push(MARKER_STRICT_ARRAY);
                out.extend_from_slice(&len_u32(values.len()).to_be_bytes());
                for value in values {
                    value.encode(out);
                }
            }
            Amf0Value::Date {
                unix_ms,
                timezone_min,
            } => {
                out.push(MARKER_DATE);
                out.extend_from_slice(&unix_ms.to_be_bytes());
                out.extend_from_slice(&timezone_min.to_be_bytes());
            }
        }
    }
}

impl From<&str> for Amf0Value {
    fn from(s: &str) -> Self {
        Amf0Value::String(s.to_owned())
    }
}

impl From<String> for Amf0Value {
    fn from(s: String) -> Self {
        Amf0Value::String(s)
    }
}

impl From<f64> for Amf0Value {
    fn from(n: f64) -> Self {
        Amf0Value::Number(n)
    }
}

impl From<bool> for Amf0Value {
    fn from(b: bool) -> Self {
        Amf0Value::Boolean(b)
    }
}

impl From<Amf0Object> for Amf0Value {
    fn from(o: Amf0Object) -> Self {
        Amf0Value::Object(o)
    }
}

impl Amf0Object {
    /// An object with no properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// This object with one more property, for building objects in one expression.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Amf0Value>) -> Self {
        self.push(name, value);
        self
    }

    /// Appends a property. A name that is already present is not replaced: AMF0 allows
    /// repeats, and [`get`](Self::get) returns the first.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Amf0Value>) {
        self.properties.push((name.into(), value.into()));
    }

    /// The value of the first property with this name.
    pub fn get(&self, name: &str) -> Option<&Amf0Value> {
        self.properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The string value of the first property with this name, if it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Amf0Value::as_str)
    }

    /// The number value of the first property with this name, if it is a number.
    pub fn get_number(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Amf0Value::as_number)
    }

    /// The properties, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Amf0Value)> {
        self.properties
            .iter()
            .map(|(key, value)| (key.as_str(), value))
    }

    /// The number of properties.
    pub fn len(&self) -> usize {
        self.properties.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.properties.is_empty()
    }

    /// The properties as a vector of name and value pairs.
    pub fn into_vec(self) -> Vec<(String, Amf0Value)> {
        self.properties
    }

    fn encode_properties(&self, out: &mut Vec<u8>) {
        for (key, value) in &self.properties {
            write_key(out, key);
            value.encode(out);
        }
        out.extend_from_slice(&[0, 0, MARKER_OBJECT_END]);
    }
}

impl<K: Into<String>, V: Into<Amf0Value>> FromIterator<(K, V)> for Amf0Object {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            properties: iter
                .into_iter()
                .map(|(key, value)| (key.into(), value.into()))
                .collect(),
        }
    }
}

/// Appends the encoding of each value in turn: the body of a command or data message.
pub fn encode_all(values: &[Amf0Value], out: &mut Vec<u8>) {
    for value in values {
        value.encode(out);
    }
}

/// Decodes every value in `input` (one message body) under `limits`.
///
/// The whole input must be values: a message is never split, so input that ends inside a
/// value is [`AmfError::Truncated`], not a request for more bytes.
pub fn decode_all(input: &[u8], limits: &AmfLimits) -> Result<Vec<Amf0Value>, AmfError> {
    let mut reader = Reader {
        input,
        values: 0,
        limits: *limits,
    };
    let mut values = Vec::new();
    while !reader.input.is_empty() {
        values.push(reader.value(1)?);
    }
    Ok(values)
}

/// Appends a string value in its short or long form.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    if s.len() <= AMF0_SHORT_STRING_MAX_BYTES {
        out.push(MARKER_STRING);
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    } else {
        out.push(MARKER_LONG_STRING);
        out.extend_from_slice(&len_u32(s.len()).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_key(out: &mut Vec<u8>, key: &str) {
    assert!(
        key.len() <= AMF0_SHORT_STRING_MAX_BYTES,
        "AMF0 property name of {} bytes",
        key.len()
    );
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key.as_bytes());
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("AMF0 length fits 32 bits")
}

/// A cursor over one message body, counting values against the caps.
struct Reader<'a> {
    input: &'a [u8],
    values: usize,
    limits: AmfLimits,
}

impl<'a> Reader<'a> {
    /// Reads one value at nesting depth `depth` (1 at the top of the message).
    fn value(&mut self, depth: usize) -> Result<Amf0Value, AmfError> {
        if depth > self.limits.depth_max {
            return Err(AmfError::TooDeep {
                limit: self.limits.depth_max,
                seen: depth,
            });
        }
        self.values += 1;
        if self.values > self.limits.values_max {
            return Err(AmfError::TooManyValues {
                limit: self.limits.values_max,
                seen: self.values,
            });
        }
        let marker = self.u8()?;
        Ok(match marker {
            MARKER_NUMBER => Amf0Value::Number(self.f64()?),
            MARKER_BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            MARKER_STRING => {
                let len = self.u16()?;
                Amf0Value::String(self.string(len.into())?)
            }
            MARKER_LONG_STRING => {
                let len = self.u32()?;
                Amf0Value::String(self.string(len as usize)?)
            }
            MARKER_OBJECT => Amf0Value::Object(self.properties(depth)?),
            MARKER_NULL => Amf0Value::Null,
            MARKER_UNDEFINED => Amf0Value::Undefined,
            MARKER_ECMA_ARRAY => {
                // The count is a hint (ffmpeg writes the true count, some encoders write 0);
                // the properties run to the object-end marker either way.
                self.u32()?;
                Amf0Value::EcmaArray(self.properties(depth)?)
            }
            MARKER_STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // Every value takes at least one byte, so a count beyond the bytes left is
                // a lie; reserving by it would let four bytes allocate gigabytes.
                let mut values = Vec::with_capacity(count.min(self.input.len()));
                for _ in 0..count {
                    values.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(values)
            }
            MARKER_DATE => {
                let unix_ms = self.f64()?;
                let timezone_min = self.u16()? as i16;
                Amf0Value::Date {
                    unix_ms,
                    timezone_min,
                }
            }
            marker => return Err(AmfError::UnsupportedMarker { marker }),
        })
    }

    /// Reads properties up to and including the object-end marker.
    fn properties(&mut self, depth: usize) -> Result<Amf0Object, AmfError> {
        let mut object = Amf0Object::new();
        loop {
            let len = self.u16()?;
            if len == 0 {
                // An empty name is legal only as the start of the object-end marker.
                match self.u8()? {
                    MARKER_OBJECT_END => return Ok(object),
                    marker => return Err(AmfError::EmptyKey { marker }),
                }
            }
            let key = self.string(len.into())?;
            let value = self.value(depth + 1)?;
            object.properties.push((key, value));
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], AmfError> {
        if self.input.len() < n {
            return Err(AmfError::Truncated);
        }
        let (front, back) = self.input.split_at(n);
        self.input = back;
        Ok(front)
    }

    fn u8(&mut self) -> Result<u8, AmfError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, AmfError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, AmfError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, AmfError> {
        let b = self.take(8)?;
        let mut bytes = [0; 8];
        bytes.copy_from_slice(b);
        Ok(f64::from_be_bytes(bytes))
    }

    fn string(&mut self, len: usize) -> Result<String, AmfError> {
        let bytes = self.take(len)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: AmfLimits = AmfLimits {
        depth_max: 16,
        values_max: 1024,
    };

    fn encoded(values: &[Amf0Value]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_all(values, &mut out);
        out
    }

    /// The bytes of each kind of value, written out by hand from the AMF0 specification.
    #[test]
    fn every_marker_by_hand() {
        let cases: Vec<(Amf0Value, Vec<u8>)> = vec![
            (
                Amf0Value::Number(1.0),
                vec![0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0],
            ),
            (Amf0Value::Boolean(true), vec![0x01, 0x01]),
            (Amf0Value::Boolean(false), vec![0x01, 0x00]),
            (Amf0Value::from("ab"), vec![0x02, 0x00, 0x02, b'a', b'b']),
            (Amf0Value::Null, vec![0x05]),
            (Amf0Value::Undefined, vec![0x06]),
            (
                Amf0Value::Object(Amf0Object::new().with("a", true)),
                vec![0x03, 0x00, 0x01, b'a', 0x01, 0x01, 0x00, 0x00, 0x09],
            ),
            (
                Amf0Value::EcmaArray(Amf0Object::new().with("a", Amf0Value::Null)),
                vec![0x08, 0, 0, 0, 1, 0x00, 0x01, b'a', 0x05, 0x00, 0x00, 0x09],
            ),
            (
                Amf0Value::StrictArray(vec![Amf0Value::Null, Amf0Value::Boolean(false)]),
                vec![0x0A, 0, 0, 0, 2, 0x05, 0x01, 0x00],
            ),
            (
                Amf0Value::Date {
                    unix_ms: 0.0,
                    timezone_min: -60,
                },
                vec![0x0B, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xC4],
            ),
        ];
        for (value, bytes) in cases {
            assert_eq!(encoded(std::slice::from_ref(&value)), bytes, "{value:?}");
            assert_eq!(decode_all(&bytes, &LIMITS), Ok(vec![value]), "{bytes:02x?}");
        }
    }

    #[test]
    fn long_strings_round_trip_and_short_form_is_used_up_to_its_limit() {
        let short = "x".repeat(AMF0_SHORT_STRING_MAX_BYTES);
        let long = "y".repeat(AMF0_SHORT_STRING_MAX_BYTES + 1);
        let bytes = encoded(&[short.clone().into(), long.clone().into()]);
        assert_eq!(bytes[0], MARKER_STRING);
        assert_eq!(bytes[3 + short.len()], MARKER_LONG_STRING);
        assert_eq!(
            decode_all(&bytes, &LIMITS),
            Ok(vec![short.into(), long.into()])
        );
        // A long string marker with a short string is accepted too.
        let small_long = [0x0C, 0, 0, 0, 1, b'z'];
        assert_eq!(decode_all(&small_long, &LIMITS), Ok(vec!["z".into()]));
    }

    #[test]
    fn ecma_array_count_is_only_a_hint() {
        // Count 0, one property: what some encoders write for onMetaData.
        let bytes = [
            0x08, 0, 0, 0, 0, 0x00, 0x01, b'w', 0x00, 0x40, 0x59, 0, 0, 0, 0, 0, 0, 0, 0, 0x09,
        ];
        let expected = Amf0Value::EcmaArray(Amf0Object::new().with("w", 100.0));
        assert_eq!(decode_all(&bytes, &LIMITS), Ok(vec![expected]));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let bytes = [0x02, 0x00, 0x02, 0xC3, b'a'];
        assert_eq!(
            decode_all(&bytes, &LIMITS),
            Ok(vec![Amf0Value::from("\u{FFFD}a")])
        );
    }

    #[test]
    fn malformed_input_is_refused() {
        let cases: &[(&[u8], AmfError)] = &[
            (&[0x00, 0x3F], AmfError::Truncated),
            (&[0x02, 0x00, 0x05, b'a'], AmfError::Truncated),
            (&[0x0C, 0xFF, 0xFF, 0xFF, 0xFF], AmfError::Truncated),
            (&[0x03, 0x00, 0x01, b'a'], AmfError::Truncated),
            (&[0x03, 0x00, 0x00], AmfError::Truncated),
            (&[0x03], AmfError::Truncated),
            (
                &[0x03, 0x00, 0x00, 0x05],
                AmfError::EmptyKey { marker: 0x05 },
            ),
            (&[0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05], AmfError::Truncated),
            (&[0x09], AmfError::UnsupportedMarker { marker: 0x09 }),
            (
                &[0x07, 0x00, 0x01],
                AmfError::UnsupportedMarker { marker: 0x07 },
            ),
            (&[0x10], AmfError::UnsupportedMarker { marker: 0x10 }),
            (&[0x11], AmfError::UnsupportedMarker { marker: 0x11 }),
            (&[0xFF], AmfError::UnsupportedMarker { marker: 0xFF }),
        ];
        for (bytes, error) in cases {
            assert_eq!(decode_all(bytes, &LIMITS), Err(*error), "{bytes:02x?}");
        }
    }

    /// An object nested `levels` deep at the top of a message: depth `levels` for the innermost
    /// object, `levels + 1` for its one property.
    fn nested(levels: usize) -> Amf0Value {
        let mut value = Amf0Value::Object(Amf0Object::new());
        for _ in 1..levels {
            value = Amf0Value::Object(Amf0Object::new().with("k", value));
        }
        value
    }

    #[test]
    fn depth_cap_at_limit_and_one_over() {
        let limits = AmfLimits {
            depth_max: 4,
            values_max: 1024,
        };
        let at_limit = nested(4);
        assert_eq!(
            decode_all(&encoded(std::slice::from_ref(&at_limit)), &limits),
            Ok(vec![at_limit])
        );
        assert_eq!(
            decode_all(&encoded(&[nested(5)]), &limits),
            Err(AmfError::TooDeep { limit: 4, seen: 5 })
        );
        let array = Amf0Value::StrictArray(vec![Amf0Value::StrictArray(vec![Amf0Value::Null])]);
        let limits = AmfLimits {
            depth_max: 2,
            values_max: 1024,
        };
        assert_eq!(
            decode_all(&encoded(&[array]), &limits),
            Err(AmfError::TooDeep { limit: 2, seen: 3 })
        );
    }

    #[test]
    fn value_cap_at_limit_and_one_over() {
        let limits = AmfLimits {
            depth_max: 16,
            values_max: 5,
        };
        // An object with three properties is four values; one more at the top is five.
        let object = Amf0Value::Object(
            Amf0Object::new()
                .with("a", 1.0)
                .with("b", 2.0)
                .with("c", 3.0),
        );
        let five = [object.clone(), Amf0Value::Null];
        assert_eq!(decode_all(&encoded(&five), &limits), Ok(five.to_vec()));
        let six = [object, Amf0Value::Null, Amf0Value::Null];
        assert_eq!(
            decode_all(&encoded(&six), &limits),
            Err(AmfError::TooManyValues { limit: 5, seen: 6 })
        );
        // A strict array announcing four billion nulls is refused at the cap, not allocated.
        let mut huge = vec![0x0A, 0xFF, 0xFF, 0xFF, 0xFF];
        huge.extend(std::iter::repeat_n(0x05, 10));
        assert_eq!(
            decode_all(&huge, &limits),
            Err(AmfError::TooManyValues { limit: 5, seen: 6 })
        );
    }

    #[test]
    fn object_accessors() {
        let object = Amf0Object::new()
            .with("app", "live")
            .with("n", 3.0)
            .with("app", "shadowed");
        assert_eq!(object.get_str("app"), Some("live"));
        assert_eq!(object.get_number("n"), Some(3.0));
        assert_eq!(object.get_str("n"), None);
        assert_eq!(object.get("missing"), None);
        assert_eq!(object.len(), 3);
        let names: Vec<&str> = object.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["app", "n", "app"]);
        let collected: Amf0Object = [("a", 1.0)].into_iter().collect();
        assert_eq!(collected, Amf0Object::new().with("a", 1.0));
    }

    #[test]
    #[should_panic(expected = "AMF0 property name")]
    fn overlong_property_names_are_a_bug() {
        let name = "k".repeat(AMF0_SHORT_STRING_MAX_BYTES + 1);
        encoded(&[Amf0Value::Object(Amf0Object::new().with(name, 1.0))]);
    }
}
