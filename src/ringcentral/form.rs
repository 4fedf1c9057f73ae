//! `application/x-www-form-urlencoded` bodies in a zeroizing buffer (they
//! carry refresh tokens, JWTs and codes).

use zeroize::Zeroizing;

/// Encode `fields` as a form body (also a URL query).
pub(crate) fn encode(fields: &[(&str, &str)]) -> Zeroizing<String> {
    let len: usize = fields
        .iter()
        .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
        .sum();
    // Allocated once at its largest possible size: no reallocation leaves a
    // copy of a secret behind.
    let mut out = Zeroizing::new(String::with_capacity(len));
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_escaped(&mut out, k);
        out.push('=');
        push_escaped(&mut out, v);
    }
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b));
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_everything_but_unreserved() {
        let body = super::encode(&[("grant_type", "a:b c"), ("x", "é&=+/")]);
        assert_eq!(body.as_str(), "grant_type=a%3Ab%20c&x=%C3%A9%26%3D%2B%2F");
    }
}
