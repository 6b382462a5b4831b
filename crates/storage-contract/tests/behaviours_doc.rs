//! `docs/behaviours.md` states every behaviour the suite runs: each test name appears
//! there under its id, so an outside adapter author reading a failure finds what it
//! means. A test added without its statement fails here.

use std::path::Path;

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/behaviours.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_behaviour_is_stated_under_its_id() {
    let doc = doc();
    let mut missing = Vec::new();
    for b in storage_contract::behaviours() {
        let heading = format!("### {}\n", b.id());
        let Some(at) = doc.find(&heading) else {
            missing.push(format!("{} (no section {})", b.name, b.id()));
            continue;
        };
        let section_end = doc[at + heading.len()..]
            .find("\n### ")
            .map_or(doc.len(), |i| at + heading.len() + i);
        if !doc[at..section_end].contains(&format!("`{}`", b.name)) {
            missing.push(format!("{} (not listed under {})", b.name, b.id()));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/behaviours.md does not state: {missing:#?}"
    );
}

#[test]
fn every_error_kind_is_in_the_table() {
    let doc = doc();
    for kind in storage_ports::ErrorKind::ALL {
        let name = format!("{kind:?}");
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "the error kinds table lacks {name}"
        );
    }
}
