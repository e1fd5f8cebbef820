//! The checked-in objects in `extensions/` are what their sources build to: the sources, the
//! headers and the Makefile are copied to a temporary directory, built there with `make`, and
//! every object's code and map sections are compared with the checked-in one (debug sections
//! are left out: they record the build directory). Skips loudly when clang or make is missing.

use object::{Object, ObjectSection};
use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readdir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else if path.extension().is_some_and(|e| e == "c" || e == "h")
            || entry.file_name() == "Makefile"
        {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

fn objects(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir.join(rel)).expect("readdir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel_name = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if entry.path().is_dir() {
            objects(dir, &rel_name, out);
        } else if name.ends_with(".o") {
            out.push(rel_name);
        }
    }
}

/// Code, map and data sections (not debug info, BTF or symbol tables), by name.
fn compared_sections(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let file = object::File::parse(bytes).expect("ELF");
    let mut out: Vec<(String, Vec<u8>)> = file
        .sections()
        .filter_map(|s| {
            let name = s.name().ok()?.to_string();
            let keep = name == ".text"
                || name.starts_with("xdp")
                || name == ".maps"
                || name == "license"
                || name.starts_with(".data")
                || name.starts_with(".rodata")
                || name.starts_with(".rel") && !name.contains("debug") && !name.contains("BTF");
            keep.then(|| (name, s.data().unwrap_or_default().to_vec()))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn checked_in_objects_match_their_sources() {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("clang") || !have("make") {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED checked_in_objects_match_their_sources: clang or make is not installed ***\n"
        );
        return;
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("extensions");
    let tmp = std::env::temp_dir().join(format!("bpfswitch-ext-fresh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_tree(&src, &tmp);
    let out = Command::new("make")
        .arg("-C")
        .arg(&tmp)
        .arg("all")
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "make failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut checked_in = Vec::new();
    objects(&src, "", &mut checked_in);
    let mut built = Vec::new();
    objects(&tmp, "", &mut built);
    checked_in.sort();
    built.sort();
    assert_eq!(
        checked_in, built,
        "the Makefile builds a different set of objects than is checked in"
    );

    let mut stale = Vec::new();
    for rel in &checked_in {
        let a = std::fs::read(src.join(rel)).expect("read checked-in object");
        let b = std::fs::read(tmp.join(rel)).expect("read built object");
        if compared_sections(&a) != compared_sections(&b) {
            stale.push(rel.clone());
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        stale.is_empty(),
        "stale objects (run `make -C extensions` and commit): {stale:?}"
    );
    eprintln!("{} objects match their sources", checked_in.len());
}
