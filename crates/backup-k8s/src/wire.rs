//! Just enough of the API server's protobuf encoding to read what a write answers: the
//! created object's uid, or an error's message. Writes ask for protobuf responses (with JSON
//! as the fallback, which custom resources use): the API server encodes them for less CPU than
//! JSON, and we skip decoding a whole object to read one field.
//!
//! A protobuf response is `k8s\0` followed by a `runtime.Unknown` whose field 2 (`raw`) holds
//! the object; an object's field 1 is its `ObjectMeta` (uid: field 5), a `Status`'s field 3
//! its message.

/// The `Accept` header of writes.
pub(crate) const ACCEPT_PROTOBUF: &str = "application/vnd.kubernetes.protobuf, application/json";

const MAGIC: &[u8] = b"k8s\0";

/// The uid in a response body, protobuf or JSON.
pub(crate) fn object_uid(body: &[u8]) -> Option<String> {
    match body.strip_prefix(MAGIC) {
        Some(unknown) => {
            let object = field(unknown, 2)?;
            text(field(field(object, 1)?, 5)?)
        }
        None => serde_json::from_slice::<serde_json::Value>(body).ok()?["metadata"]["uid"]
            .as_str()
            .map(str::to_owned),
    }
}

/// The message of an error response (a `Status`), protobuf or JSON.
pub(crate) fn status_message(body: &[u8]) -> Option<String> {
    match body.strip_prefix(MAGIC) {
        Some(unknown) => text(field(field(unknown, 2)?, 3)?),
        None => serde_json::from_slice::<serde_json::Value>(body).ok()?["message"]
            .as_str()
            .map(str::to_owned),
    }
}

fn text(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

/// The first length-delimited field `number` of a message.
fn field(mut message: &[u8], number: u64) -> Option<&[u8]> {
    while !message.is_empty() {
        let tag = varint(&mut message)?;
        let length = match tag & 7 {
            0 => {
                varint(&mut message)?;
                0
            }
            1 => 8,
            2 => usize::try_from(varint(&mut message)?).ok()?,
            5 => 4,
            _ => return None,
        };
        let (value, rest) = message.split_at_checked(length)?;
        if tag & 7 == 2 && tag >> 3 == number {
            return Some(value);
        }
        message = rest;
    }
    None
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delimited(number: u64, value: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8];
        let mut length = value.len();
        while length >= 0x80 {
            out.push((length as u8) | 0x80);
            length >>= 7;
        }
        out.push(length as u8);
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn reads_a_uid_past_other_fields_of_every_wire_type() {
        // ObjectMeta: name (1), a varint (8: generation), uid (5).
        let mut meta = delimited(1, b"config-1");
        meta.extend_from_slice(&[8 << 3, 0x96, 0x01]);
        meta.extend(delimited(5, b"1f2e-uid"));
        let object = [delimited(1, &meta), delimited(2, &[0u8; 300])].concat();
        let mut unknown = delimited(1, b"type meta");
        unknown.extend([1 << 3 | 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        unknown.extend(delimited(2, &object));
        let body = [MAGIC, &unknown].concat();
        assert_eq!(object_uid(&body).as_deref(), Some("1f2e-uid"));
    }

    #[test]
    fn reads_a_status_message_and_json_alike() {
        let status = [delimited(2, b"Failure"), delimited(3, b"already exists")].concat();
        let body = [MAGIC, &delimited(2, &status)].concat();
        assert_eq!(status_message(&body).as_deref(), Some("already exists"));
        assert_eq!(
            status_message(br#"{"kind":"Status","message":"no"}"#).as_deref(),
            Some("no")
        );
        assert_eq!(
            object_uid(br#"{"metadata":{"uid":"u-1"}}"#).as_deref(),
            Some("u-1")
        );
    }

    #[test]
    fn truncated_or_garbled_bodies_give_none() {
        let body = [MAGIC, &delimited(2, &delimited(1, &delimited(5, b"uid")))].concat();
        assert!(object_uid(&body[..body.len() - 2]).is_none());
        assert!(object_uid(&[MAGIC, &[0xff; 12][..]].concat()).is_none());
        assert!(object_uid(b"not json").is_none());
    }
}
