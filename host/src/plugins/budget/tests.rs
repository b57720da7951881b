use super::*;

#[test]
fn too_many_leaked_versions_refuse_with_what_to_do() {
    assert!(check(0, 32).is_ok());
    let refused = check(32, 32).unwrap_err().to_string();
    assert!(
        refused.contains("32 earlier versions") && refused.contains("restart the host"),
        "{refused}"
    );
}

#[test]
fn the_probes_read_this_process() {
    let keys = pthread_keys_in_use().expect("a key can be created");
    assert!(keys < PTHREAD_KEYS_MAX, "{keys}");
    // The probe gives its key back: a thousand probes do not use up the 1024 keys.
    for _ in 0..1000 {
        assert!(pthread_keys_in_use().is_some_and(|k| k < PTHREAD_KEYS_MAX));
    }
    assert!(maps_in_use().is_some_and(|maps| maps > 0));
}
