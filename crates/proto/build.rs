//! Compiles every proto under `proto/` without a system protoc: protox parses
//! them, tonic-prost-build writes messages, clients and servers, and
//! pbjson-build writes proto3 JSON (serde) impls for the gateway.

use std::{env, fs, path::PathBuf};

#[allow(clippy::disallowed_methods, reason = "cargo hands a build script its paths in the environment")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut files = Vec::new();
    collect(&root, &root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());

    let mut compiler = protox::Compiler::new([&root])?;
    // Comments (source info) feed the OpenAPI descriptions; the encoded set
    // keeps the options' extensions (google.api.http), which prost-types'
    // FileDescriptorSet would drop.
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&files)?;
    let fds = compiler.file_descriptor_set();
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let bytes = compiler.encode_file_descriptor_set();
    fs::write(out.join("banso_descriptor.bin"), &bytes)?;

    tonic_prost_build::configure()
        .skip_protoc_run()
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;

    pbjson_build::Builder::new().register_descriptors(&bytes)?.build(&[".banso"])?;
    Ok(())
}

/// Every `.proto` below `dir`, as a path relative to `root`.
fn collect(root: &PathBuf, dir: &PathBuf, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let rel = path.strip_prefix(root).expect("below root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
