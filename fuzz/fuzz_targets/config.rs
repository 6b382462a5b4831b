//! The configuration file and its environment overrides, as a user writes them: YAML,
//! then `FLOWSTORE_*` variables, then every backend's own settings check. Whatever the
//! input, the answer is a configuration or a typed error, and an accepted
//! configuration survives a serialise/parse round trip unchanged.
//!
//! Input: the YAML text, optionally followed by a line `---env` and `NAME=VALUE`
//! lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_wiring::{Concern, StorageConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (yaml, env) = text.split_once("\n---env\n").unwrap_or((text, ""));
    let Ok(mut config) = StorageConfig::from_yaml(yaml) else {
        return;
    };
    let vars = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()));
    if config.apply_env(vars).is_err() {
        return;
    }
    let json = serde_json::to_value(&config).expect("an accepted config serialises");
    let back: StorageConfig =
        serde_json::from_value(json).expect("a serialised config parses again");
    assert_eq!(back, config, "the config changed in a round trip");
    for c in Concern::ALL {
        let b = config.backend(c);
        let s = &b.settings;
        // Each backend's own check answers a config or an error; neither panics.
        let _ = match b.backend.as_str() {
            "memory" => s.parse::<adapter_memory::Config>("memory").map(|_| ()),
            "fs" => s.parse::<adapter_fs::Config>("fs").map(|_| ()),
            "sqlite" => s.parse::<adapter_sqlite::Config>("sqlite").map(|_| ()),
            "postgres" => s.parse::<adapter_postgres::Config>("postgres").map(|c| {
                let _ = format!("{c:?}");
            }),
            "redis" => s.parse::<adapter_redis::Config>("redis").map(|c| {
                let _ = format!("{c:?}");
            }),
            "keyring" => s.parse::<adapter_keyring::Config>("keyring").map(|_| ()),
            _ => Ok(()),
        };
    }
    let _ = format!("{config:?}");
});
