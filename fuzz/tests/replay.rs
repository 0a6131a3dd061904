//! Replays every corpus input (`corpus/<target>/`) and every regression input
//! (`regressions/<target>/`) through the fuzz properties, without libFuzzer:
//! `cargo test --manifest-path fuzz/Cargo.toml --no-default-features`.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "{target}: {} fails", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "{target}: no inputs to replay");
}

/// One test per target, named after it.
macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay(stringify!($target), altafinex_fuzz::$target::run);
            }
        )*
    };
}

replay_tests!(card_parse, card_format, frame_params, frame_message, frame_style, vault_envelope, vault_url, vault_keys);
