use super::*;
use hyper::header::HeaderValue;

fn headers(pairs: &[(hyper::header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(name, HeaderValue::from_str(value).unwrap());
    }
    map
}

#[test]
fn tokens_are_256_bit_hex_and_differ() {
    let (a, b) = (new_token(), new_token());
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
    assert_ne!(token_hash(&a), a);
    assert_eq!(token_hash(&a), token_hash(&a));
}

#[test]
fn player_ids_are_32_lowercase_hex() {
    let id = new_player_id();
    assert_eq!(id.len(), 32);
    assert!(id
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
}

#[test]
fn bearer_comes_first_and_its_scheme_is_case_insensitive() {
    let both = headers(&[(AUTHORIZATION, "Bearer abc"), (COOKIE, "sid=xyz")]);
    assert_eq!(token_from(&both).as_deref(), Some("abc"));
    assert_eq!(
        token_from(&headers(&[(AUTHORIZATION, "bearer abc")])).as_deref(),
        Some("abc")
    );
    assert_eq!(token_from(&headers(&[(AUTHORIZATION, "Basic abc")])), None);
}

#[test]
fn the_sid_cookie_is_found_among_others() {
    let cookies = headers(&[(COOKIE, "theme=dark; sid=xyz; lang=en")]);
    assert_eq!(token_from(&cookies).as_deref(), Some("xyz"));
    assert_eq!(token_from(&headers(&[(COOKIE, "sidx=1; sid=")])), None);
    assert_eq!(token_from(&HeaderMap::new()), None);
}
