//! The shipped pipeline configs parse and validate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use ltv::config::{ConfigError, EMBEDDED_DEMO, PipelineConfig, SourceKind};

const NIGHTLY: &str = "pipelines/nightly.example.toml";
const DEMO: &str = "pipelines/demo.toml";

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every environment-variable name the file assigns to a `*_env` key.
fn env_names_in(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            if !k.trim().ends_with("_env") {
                return None;
            }
            let v = v.split('#').next()?.trim().trim_matches('"');
            Some(v.to_owned())
        })
        .collect()
}

#[test]
fn demo_parses_without_any_environment() {
    let text = read(DEMO);
    assert_eq!(text, EMBEDDED_DEMO, "the embedded copy is the shipped file");
    let c = PipelineConfig::from_toml(&text, DEMO, &|_| None).unwrap();
    assert!(c.sim.is_some());
    assert!(c.mysql.is_none());
    for kind in SourceKind::ALL {
        let s = c
            .sources
            .get(kind)
            .unwrap_or_else(|| panic!("demo lacks {kind}"));
        assert!(s.is_simulated(), "{kind} should be simulated in the demo");
    }
}

#[test]
fn nightly_example_parses_with_every_variable_it_names() {
    let text = read(NIGHTLY);
    let names = env_names_in(&text);
    assert!(names.contains("MIXPANEL_SECRET"), "{names:?}");
    assert!(names.contains("LTV_MYSQL_URL"), "{names:?}");
    let env = |k: &str| names.contains(k).then(|| format!("fake-{k}"));
    let c = PipelineConfig::from_toml(&text, NIGHTLY, &env).unwrap();
    assert!(c.sim.is_none());
    assert!(c.mysql.is_some());

    // Every credential the config needs is one the file names explicitly.
    let mut needed = BTreeSet::new();
    for s in c.sources.enabled() {
        assert!(
            !s.is_simulated(),
            "{} must point at the real service",
            s.kind()
        );
        for (_, var) in s.credential_envs() {
            needed.insert(var.to_owned());
        }
    }
    needed.insert(c.mysql.as_ref().unwrap().url_env.clone());
    assert_eq!(needed, names);

    // No value would leak: fake values never show up in Debug output.
    assert!(!format!("{c:?}").contains("fake-"));
}

#[test]
fn nightly_example_mentions_every_known_source() {
    let text = read(NIGHTLY);
    let c = PipelineConfig::from_toml(&text, NIGHTLY, &|_| Some("x".to_owned())).unwrap();
    for kind in SourceKind::ALL {
        assert!(
            text.contains(&format!("[sources.{}]", kind.name())),
            "nightly.example.toml lacks [sources.{kind}]"
        );
        let s = c.sources.get(kind).unwrap();
        assert!(
            s.common().enabled,
            "{kind} should be enabled in the example"
        );
    }
}

#[test]
fn nightly_example_without_environment_names_the_missing_variables() {
    let text = read(NIGHTLY);
    let err = PipelineConfig::from_toml(&text, NIGHTLY, &|_| None).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(NIGHTLY), "{msg}");
    assert!(
        msg.contains(
            "source meta: environment variable META_ACCESS_TOKEN is not set (access_token_env)"
        ),
        "{msg}"
    );
    for name in env_names_in(&text) {
        assert!(msg.contains(&name), "{msg} should name {name}");
    }
}

#[test]
fn shipped_files_load_from_disk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = PipelineConfig::load(&root.join(DEMO)).unwrap();
    assert_eq!(c.pipeline.name, "demo");
}
