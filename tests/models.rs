//! The committed models are the ones `models/README.md` lists, byte for byte.

use std::path::Path;

use sha2::{Digest, Sha256};

#[test]
fn committed_models_match_their_recorded_sha256() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut checked = 0;
    for line in readme.lines() {
        // Rows of the sums table: | `file.onnx` | `hex` |
        let cells: Vec<&str> = line
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        if cells.len() == 4 && cells[1].ends_with(".onnx") && cells[2].len() == 64 {
            let bytes =
                std::fs::read(dir.join(cells[1])).unwrap_or_else(|e| panic!("{}: {e}", cells[1]));
            let got: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, cells[2], "{} differs from models/README.md", cells[1]);
            checked += 1;
        }
    }
    let onnx = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "onnx")
        })
        .count();
    assert!(
        checked > 0 && checked == onnx,
        "every model file has a recorded sum ({checked} of {onnx})"
    );
}
