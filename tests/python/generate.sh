#!/usr/bin/env bash
# Generates Python message and gRPC stubs from proto/ into tests/python/gen/.
#
# Usage: tests/python/generate.sh   (from anywhere; PYTHON picks the
# interpreter, default python3, which needs grpcio-tools installed).
#
# The google.protobuf well-known types (timestamp, field_mask, empty) are
# imported from the include directory that grpcio-tools ships; their Python
# modules come with the protobuf runtime, so only banso/** is generated.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
out="$here/gen"

wkt="$("$python" -c 'import os, grpc_tools; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"
if [[ ! -f "$wkt/google/protobuf/timestamp.proto" ]]; then
    echo "generate.sh: grpcio-tools ships no well-known types under $wkt" >&2
    exit 1
fi

mapfile -t protos < <(cd "$root/proto" && find banso -name '*.proto' | LC_ALL=C sort)
if [[ ${#protos[@]} -eq 0 ]]; then
    echo "generate.sh: no .proto files under $root/proto" >&2
    exit 1
fi

rm -rf "$out"
mkdir -p "$out"
cd "$root"
"$python" -m grpc_tools.protoc \
    -I proto \
    -I "$wkt" \
    --python_out="$out" \
    --pyi_out="$out" \
    --grpc_python_out="$out" \
    "${protos[@]/#/proto/}"
echo "generated ${#protos[@]} proto files into ${out#"$root"/}"
