#!/usr/bin/env bash
# check-dockerfile.sh: prove the Dockerfile's build stage works without a Docker engine.
# It copies what the builder stage COPYs into a scratch build context, runs the stage's RUN
# commands there (same flags, ARG defaults, CGO_ENABLED=0), writing the binary into a temp dir
# instead of /bin, then checks the binary is static, built with -trimpath, stripped (-s -w), and
# that the runtime stage ships that binary as a non-root ENTRYPOINT.
set -euo pipefail
# The builder stage runs with the image's environment, not ours (the Makefile exports
# CGO_ENABLED=0 and GOFLAGS=-trimpath, which would hide their absence from the Dockerfile).
unset GOFLAGS CGO_ENABLED

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dockerfile=${1:-$root/Dockerfile}
binary=/bin/aws-cloud-controller-manager
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
ctx=$work/src
out=$work/out
mkdir -p "$ctx" "$out"

fail() { echo "check-dockerfile: $*" >&2; exit 1; }

# Logical Dockerfile lines: continuations joined, comments and blank lines dropped.
mapfile -t lines < <(sed -e 's/\r$//' "$dockerfile" | awk '
  /^[[:space:]]*#/ { next }
  { if (sub(/\\[[:space:]]*$/, "")) { buf = buf $0 " "; next } print buf $0; buf = "" }
' | grep -v '^[[:space:]]*$')

stage=global builder_seen=false runtime_copy="" entrypoint="" user="" runtime_from=""
declare -a runs=()
declare -A args=()
for line in "${lines[@]}"; do
  read -r instr rest <<<"$line"
  case "${instr^^}" in
    FROM)
      if [[ $rest =~ [Aa][Ss][[:space:]]+builder$ ]]; then stage=builder builder_seen=true
      else stage=runtime runtime_from=$(awk '{print $NF}' <<<"$rest"); fi ;;
    ARG)
      name=${rest%%=*}; val=""; [[ $rest == *=* ]] && val=${rest#*=}
      args[$name]=$val ;;
    COPY)
      if [[ $stage == builder ]]; then
        read -r -a parts <<<"$rest"
        dest=${parts[-1]}
        for src in "${parts[@]:0:${#parts[@]}-1}"; do
          mkdir -p "$ctx/$dest"
          # Like COPY: a directory's contents land in dest, a file lands inside dest.
          if [[ -d $root/$src ]]; then cp -R "$root/${src%/}/." "$ctx/$dest"; else cp "$root/$src" "$ctx/$dest"; fi
        done
      elif [[ $stage == runtime ]]; then runtime_copy=$rest; fi ;;
    RUN) [[ $stage == builder ]] && runs+=("$rest") ;;
    USER) [[ $stage == runtime ]] && user=$rest ;;
    ENTRYPOINT) [[ $stage == runtime ]] && entrypoint=$rest ;;
  esac
done
$builder_seen || fail "no 'FROM ... AS builder' stage"
((${#runs[@]} > 0)) || fail "builder stage has no RUN"

# .dockerignore drops tests from the context: so does this check.
find "$ctx" \( -name '*_test.go' -o -name testdata \) -prune -exec rm -rf {} +

# Docker sets TARGETOS/TARGETARCH from the target platform; build for this machine.
args[TARGETOS]=$(go env GOOS)
args[TARGETARCH]=$(go env GOARCH)
for name in "${!args[@]}"; do export "$name=${args[$name]}"; done

built=false
for cmd in "${runs[@]}"; do
  if [[ $cmd == *"go build"* ]]; then
    [[ $cmd == *"CGO_ENABLED=0"* ]] || fail "go build without CGO_ENABLED=0: $cmd"
    [[ $cmd == *"-o $binary "* ]] || fail "go build does not write $binary: $cmd"
    cmd=${cmd/"-o $binary "/"-o $out/aws-cloud-controller-manager "}
    built=true
  fi
  echo ">> (cd \$context && $cmd)"
  (cd "$ctx" && env -u GOFLAGS bash -c "$cmd") || fail "RUN failed: $cmd"
done
$built || fail "no RUN line runs go build"

bin=$out/aws-cloud-controller-manager
[[ -x $bin ]] || fail "build produced no executable"
info=$(go version -m "$bin")
grep -q $'\tbuild\tCGO_ENABLED=0$' <<<"$info" || fail "binary not built with CGO_ENABLED=0"
grep -q $'\tbuild\t-trimpath=true$' <<<"$info" || fail "binary not built with -trimpath"
# -trimpath keeps -ldflags out of the build info, so check -s -w on the ELF itself.
(cd "$root" && go run ./hack/elfcheck -stripped "$bin") || fail "binary is not static and stripped (-s -w)"

[[ $runtime_from == gcr.io/distroless/static* || ${args[RUNTIME_IMAGE]:-} == gcr.io/distroless/static*nonroot ]] ||
  fail "runtime image is not distroless static: $runtime_from"
[[ $runtime_copy == *"--from=builder $binary $binary"* ]] || fail "runtime stage does not copy $binary: $runtime_copy"
[[ $user == 65532* ]] || fail "runtime USER is '$user', want 65532 (nonroot)"
[[ $entrypoint == "[\"$binary\"]" ]] || fail "ENTRYPOINT is $entrypoint, want [\"$binary\"]"
echo "check-dockerfile: OK ($(du -h "$bin" | cut -f1) static binary, $(grep -c . <<<"$info") build-info lines)"
