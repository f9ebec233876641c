//! `tufa.toml` (`tufa::config::Config`, the code the binary runs).
//!
//! Asserts: parsing never panics (errors quote the offending line by byte offset); a config
//! that parses validates without panicking, serialises to TOML that parses back and
//! serialises to the same text, and the annotated file `tufa init` writes from it
//! (`render_initial`) parses back with the same values for the keys it writes (upstream, projects, online and
//! dev keys, bin layout, latest releases, listen address).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tufa::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("fuzz/tufa.toml");
    let config = match Config::parse(text, origin) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz/tufa.toml"), "{msg}");
            return;
        }
    };
    let _ = config.validate();
    let _ = config.tuf.layout();

    let Ok(serialised) = toml::to_string(&config) else {
        return;
    };
    let again = Config::parse(&serialised, origin).unwrap_or_else(|e| panic!("{serialised}\n{e}"));
    let twice = toml::to_string(&again).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(twice, serialised, "serialising is not stable");

    let initial = config.render_initial();
    let back = Config::parse(&initial, origin).unwrap_or_else(|e| panic!("render_initial:\n{initial}\n{e}"));
    assert_eq!(back.upstream, config.upstream, "{initial}");
    assert_eq!(back.projects, config.projects, "{initial}");
    assert_eq!(back.tuf.online_key, config.tuf.online_key, "{initial}");
    assert_eq!(
        back.tuf.insecure_dev_keys, config.tuf.insecure_dev_keys,
        "{initial}"
    );
    assert_eq!(back.tuf.bins_bit_length, config.tuf.bins_bit_length, "{initial}");
    assert_eq!(
        back.sync.latest_releases, config.sync.latest_releases,
        "{initial}"
    );
    assert_eq!(back.serve.listen, config.serve.listen, "{initial}");
});
