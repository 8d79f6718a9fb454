# `execguard check --image-tar` on tarballs the real `docker save` wrote, each prediction
# compared with what `docker run` then does. A fragment: integration/docker.sh sources it with
#   D    the docker client command (bash array, with its -H socket)
#   EG   the execguard binary
#   ok "msg" / bad "msg"   to count results
# and image egtest:1 (a busybox root from `docker import`: /bin/busybox, /bin/sh, and the arm64
# /bin/busybox-arm64). Images are made here with `docker import` and `docker build` from local
# files only (nothing is pulled) and removed at the end.

it_dir=$(mktemp -d /tmp/execguard-image-tar.XXXXXX)
it_images=()

# Only while no enabled binfmt_misc handler takes aarch64 does an arm64 program fail here.
it_arm_fails=1
if grep -lqs '7f454c460201010000000000000000000200b700' /proc/sys/fs/binfmt_misc/* 2>/dev/null \
   && grep -qs '^enabled' /proc/sys/fs/binfmt_misc/status; then
  it_arm_fails=0
fi

# it_check NAME ARGS...: check the saved image NAME; sets it_rc and it_out (JSON).
it_check() {
  local tar="$it_dir/$(echo "$1" | tr ':/' '__').tar"
  shift
  it_out=$("$EG" check --image-tar "$tar" --format json "$@" 2>"$it_dir/err") && it_rc=0 || it_rc=$?
}

# it_save NAME: docker save NAME into the work dir.
it_save() {
  "${D[@]}" save -o "$it_dir/$(echo "$1" | tr ':/' '__').tar" "$1"
}

# it_codes: the error codes of the last check, sorted, space-separated.
it_codes() {
  printf '%s' "$it_out" | jq -r '[.reports[].diagnoses[].findings[] | select(.severity == "error") | .code] | sort | join(" ")'
}

# it_import NAME CHANGES...: an image of the busybox root with Dockerfile changes.
it_import() {
  local name=$1
  shift
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  "${D[@]}" import "${args[@]}" "$it_dir/root.tar" "$name" >/dev/null
  it_images+=("$name")
}

"${D[@]}" create --name eg-it-src egtest:1 /bin/busybox true >/dev/null
"${D[@]}" export eg-it-src >"$it_dir/root.tar"
"${D[@]}" rm eg-it-src >/dev/null

# 1. A good image: the entrypoint and cmd are read from the config; nothing to report; runs.
it_import egtest-it:good 'ENTRYPOINT ["/bin/busybox"]' 'CMD ["echo","good"]' 'ENV GREETING=hi' 'WORKDIR /bin'
it_save egtest-it:good
it_check egtest-it:good
it_got=$(printf '%s' "$it_out" | jq -c '.reports[0].target | [.platform, .entrypoint, .cmd, .working_dir, (.env | index("GREETING=hi") != null)]')
[ "$it_rc" = 0 ] && [ "$it_got" = '["linux/amd64",["/bin/busybox"],["echo","good"],"/bin",true]' ] \
  && ok "image-tar: docker save of a good image: config read, exit 0" || bad "image-tar: good image: rc $it_rc, $it_got, $(cat "$it_dir/err")"
it_out=$("${D[@]}" run --rm egtest-it:good 2>&1) && it_rc=0 || it_rc=$?
[ "$it_out" = good ] && [ "$it_rc" = 0 ] && ok "image-tar: and docker run agrees" || bad "image-tar: docker run good: '$it_out' rc $it_rc"

# 2. The buildx mistake: an arm64 program in an image labelled amd64.
it_import egtest-it:armbin 'ENTRYPOINT ["/bin/busybox-arm64"]' 'CMD ["echo","hi"]'
it_save egtest-it:armbin
it_check egtest-it:armbin
it_label=$(printf '%s' "$it_out" | jq -r '[.reports[].diagnoses[].findings[] | select(.code == "platform-label-mismatch")][0] | "\(.evidence.label) \(.evidence.file_arch) \(.severity)"')
[ "$it_rc" = 1 ] && [ "$it_label" = "linux/amd64 arm64 error" ] \
  && ok "image-tar: arm64 program in an amd64 image: platform-label-mismatch, exit 1" || bad "image-tar: armbin: rc $it_rc, $it_label, $it_out"
if [ "$it_arm_fails" = 1 ]; then
  [ "$(it_codes)" = "arch-mismatch platform-label-mismatch" ] && ok "image-tar: and arch-mismatch on this host" || bad "image-tar: armbin codes: $(it_codes)"
  it_want=$(printf '%s' "$it_out" | jq -r '[.reports[].diagnoses[].findings[] | select(.code == "arch-mismatch")][0].expected_error')
  it_out=$("${D[@]}" run --rm egtest-it:armbin 2>&1) && it_rc=0 || it_rc=$?
  [ "$it_rc" != 0 ] && printf '%s' "$it_out" | grep -qF "$it_want" \
    && ok "image-tar: docker run fails as predicted ($it_want)" || bad "image-tar: docker run armbin: rc $it_rc '$it_out', predicted '$it_want'"
fi
it_text=$("$EG" check --image-tar "$it_dir/egtest-it_armbin.tar" 2>&1) || true
printf '%s\n' "$it_text" | grep -q '^error: /bin/busybox-arm64 is built for arm64 .*labelled linux/amd64.*\[platform-label-mismatch\]$' \
  && ok "image-tar: text output names the mismatch" || bad "image-tar: text: $it_text"

# 3. The other way round: an image labelled arm64 whose program is the host's amd64 busybox:
#    it runs here, and would fail on the arm64 machines it is pulled on. (This dockerd ignores
#    `import --platform`: the label is rewritten in the saved config and the image loaded back.)
it_rl="$it_dir/relabel"
mkdir -p "$it_rl"
tar -C "$it_rl" -xf "$it_dir/egtest-it_good.tar"
it_cfg=$(jq -r '.[0].Config' "$it_rl/manifest.json")
jq '.architecture = "arm64"' "$it_rl/$it_cfg" >"$it_rl/new.json"
it_h=$(sha256sum "$it_rl/new.json" | cut -d' ' -f1)
rm "$it_rl/$it_cfg"
mv "$it_rl/new.json" "$it_rl/$it_h.json"
jq --arg c "$it_h.json" '.[0].Config = $c | .[0].RepoTags = ["egtest-it:armlabel"]' "$it_rl/manifest.json" >"$it_rl/m.json"
mv "$it_rl/m.json" "$it_rl/manifest.json"
tar -C "$it_rl" -cf "$it_dir/relabel.tar" .
"${D[@]}" load -q -i "$it_dir/relabel.tar" >/dev/null
it_images+=(egtest-it:armlabel)
it_arch=$("${D[@]}" image inspect -f '{{.Architecture}}' egtest-it:armlabel)
[ "$it_arch" = arm64 ] && ok "image-tar: docker holds an image labelled arm64" || bad "image-tar: relabel: $it_arch"
it_save egtest-it:armlabel
it_check egtest-it:armlabel
it_plat=$(printf '%s' "$it_out" | jq -r '.reports[0].target.platform')
[ "$it_rc" = 1 ] && [ "$it_plat" = linux/arm64 ] && [ "$(it_codes)" = platform-label-mismatch ] \
  && ok "image-tar: amd64 program in an arm64 image: platform-label-mismatch only" || bad "image-tar: armlabel: rc $it_rc $it_plat $(it_codes) $(cat "$it_dir/err")"
it_check egtest-it:armlabel --platform linux/amd64
[ "$it_rc" = 2 ] && grep -q 'has no image for linux/amd64' "$it_dir/err" \
  && ok "image-tar: --platform selects by label" || bad "image-tar: --platform: rc $it_rc $(cat "$it_dir/err")"

# 4. docker build layers: a whiteout (RUN rm), a CRLF script, a USER and an ENV PATH.
mkdir -p "$it_dir/ctx"
printf '#!/bin/sh\r\necho crlf\r\n' >"$it_dir/ctx/crlf.sh"
printf '#!/bin/busybox sh\necho secret\n' >"$it_dir/ctx/secret"
printf 'root:x:0:0:root:/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n' >"$it_dir/ctx/passwd"
printf 'root:x:0:\napp:x:1000:\n' >"$it_dir/ctx/group"
chmod 755 "$it_dir/ctx/crlf.sh"
chmod 700 "$it_dir/ctx/secret"
cat >"$it_dir/ctx/Dockerfile" <<'DOCKERFILE'
FROM egtest-it:good
COPY crlf.sh /usr/local/bin/crlf.sh
COPY secret /usr/local/bin/secret
COPY passwd group /etc/
RUN ["/bin/busybox", "rm", "/bin/sh"]
ENV PATH=/usr/local/bin:/bin
USER app
ENTRYPOINT ["crlf.sh"]
DOCKERFILE
if "${D[@]}" build -q --network none -t egtest-it:built "$it_dir/ctx" >"$it_dir/build.log" 2>&1; then
  it_images+=(egtest-it:built)
  it_save egtest-it:built
  it_check egtest-it:built
  it_got=$(printf '%s' "$it_out" | jq -r '.reports[0].target | "\(.user) \(.layers) \(.env | map(select(startswith("PATH="))) | join(","))"')
  [ "$it_rc" = 1 ] && [ "$(it_codes)" = shebang-crlf ] && [ "$it_got" = "app 5 PATH=/usr/local/bin:/bin" ] \
    && ok "image-tar: docker build layers: CRLF entrypoint found through ENV PATH as USER app" || bad "image-tar: built: rc $it_rc $(it_codes) '$it_got' $it_out"
  it_want=$(printf '%s' "$it_out" | jq -r '[.reports[].diagnoses[].findings[] | select(.code == "shebang-crlf")][0].expected_error')
  it_out=$("${D[@]}" run --rm egtest-it:built 2>&1) && it_rc=0 || it_rc=$?
  [ "$it_rc" != 0 ] && printf '%s' "$it_out" | grep -qF "$it_want" \
    && ok "image-tar: docker run fails as predicted ($it_want)" || bad "image-tar: docker run built: rc $it_rc '$it_out', predicted '$it_want'"
  it_check egtest-it:built /bin/sh /usr/local/bin/secret /bin/busybox
  [ "$it_rc" = 1 ] && [ "$(it_codes)" = "not-found permission-denied-user" ] \
    && ok "image-tar: the RUN rm whiteout hides /bin/sh; USER app may not run a 0700 root program" || bad "image-tar: built paths: $(it_codes) $it_out"
  it_out=$("${D[@]}" run --rm --entrypoint /usr/local/bin/secret egtest-it:built 2>&1) && it_rc=0 || it_rc=$?
  [ "$it_rc" != 0 ] && printf '%s' "$it_out" | grep -qi 'permission denied' \
    && ok "image-tar: and docker run is refused the 0700 program" || bad "image-tar: docker run secret: rc $it_rc '$it_out'"
else
  bad "image-tar: docker build failed: $(tail -5 "$it_dir/build.log")"
fi

# 5. A sweep of a whole saved image: egtest:1 carries the arm64 busybox next to the amd64 one.
it_save egtest:1
it_check egtest:1 --all
it_n=$(printf '%s' "$it_out" | jq -r '.reports[0].checked')
it_who=$(printf '%s' "$it_out" | jq -r '[.reports[].diagnoses[] | select(any(.findings[]; .code == "platform-label-mismatch")) | .program.args0] | join(" ")')
[ "$it_rc" = 1 ] && [ "$it_n" = 2 ] && [ "$it_who" = /bin/busybox-arm64 ] \
  && ok "image-tar: --all over egtest:1 finds the arm64 program" || bad "image-tar: --all: rc $it_rc it_n=$it_n it_who=$it_who"

# 6. A tarball that is not an image is refused clearly.
head -c 4096 /dev/urandom >"$it_dir/junk.tar"
it_out=$("$EG" check --image-tar "$it_dir/junk.tar" 2>&1) && it_rc=0 || it_rc=$?
[ "$it_rc" = 2 ] && printf '%s' "$it_out" | grep -q '^execguard: cannot check: ' \
  && ok "image-tar: a junk tarball: exit 2 with a reason" || bad "image-tar: junk: rc $it_rc $it_out"

for it_i in "${it_images[@]}"; do "${D[@]}" rmi -f "$it_i" >/dev/null 2>&1 || true; done
rm -rf "$it_dir"
