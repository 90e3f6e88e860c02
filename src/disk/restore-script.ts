/**
 * `distbackup-restore.sh` (SPEC §2): restores a disk's files with POSIX `sh`, `mkdir`, `cp`,
 * `touch`, `chmod`, `mv`, `rm`, `sync`, `sha256sum`, `ls` and `id` alone. It embeds no path: it reads the
 * manifest beside it, decodes `%XX` with octal printf escapes (`\x` is not POSIX), refuses
 * absolute and `..` paths and a link on the way below DEST, never overwrites an existing file
 * (it checks its hash: another content counts as failed), copies each file to a temp name beside
 * it, checks its hash there, sets its mode (permission bits only) and mtime (`touch -t` in UTC,
 * computed with shell arithmetic), and only then gives it its name; `sync` at the end.
 */

/** The script's text; identical on every disk. */
export const RESTORE_SCRIPT = `#!/bin/sh
# distbackup-restore.sh - restore the files held by this distbackup disk, with POSIX sh and
# coreutils only (sh, mkdir, cp, mv, rm, touch, chmod, sync, sha256sum, ls, id).
#
#   sh distbackup-restore.sh DEST [MANIFEST]
#
# Reads distbackup-manifest.txt beside this script: one line per file,
# sha256 TAB size TAB mtime(unix s) TAB mode(octal) TAB path (percent-encoded, %XX = one byte).
# The content of a file is distbackup-objects/<first 3 hex>/<sha256>. A file that already exists
# in DEST is never overwritten: it counts as present when it has the right content, else as
# failed. Exit status 1 when a file could not be restored or checked (except a file of the user
# running this that its own mode, 000 or 200, keeps from being read: counted apart, unchecked).
set -u
LC_ALL=C
export LC_ALL
case "\${1-}" in
  '' | -h | --help)
    printf 'usage: sh %s DEST [MANIFEST]\\n' "$0" >&2
    exit 1 ;;
esac
DEST=$1
case $0 in */*) DISK=\${0%/*} ;; *) DISK=. ;; esac
MANIFEST=\${2-$DISK/distbackup-manifest.txt}
OBJECTS=$DISK/distbackup-objects
if [ ! -r "$MANIFEST" ]; then
  printf 'distbackup-restore: cannot read %s\\n' "$MANIFEST" >&2
  exit 1
fi
mkdir -p -- "$DEST" || exit 1
# A folder of this run's own for the temp files, made at the first copy (so nothing planted can
# be in it; a name a stopped run left is never reused), removed at the end or on a signal.
WORK=
NOWORK=
work() {
  [ -n "$WORK" ] && return 0
  [ -n "$NOWORK" ] && return 1
  n=0
  while [ "$n" -lt 100 ]; do
    w=$DEST/.distbackup-restore-sh.$$.$n
    if mkdir -m 700 -- "$w" 2>/dev/null; then
      WORK=$w
      return 0
    fi
    # Only a name taken is tried again; any other failure (full, read-only) is final.
    if [ ! -e "$w" ] && [ ! -L "$w" ]; then
      mkdir -m 700 -- "$w" || break
      WORK=$w
      return 0
    fi
    n=$((n + 1))
  done
  NOWORK=1
  return 1
}
cleanup() {
  if [ -n "$WORK" ]; then
    rm -f -- "$WORK/file"
    rmdir -- "$WORK" 2>/dev/null
  fi
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM
TAB=$(printf '\\t')
restored=0
failed=0
present=0
unchecked=0

warn() {
  printf 'distbackup-restore: %s\\n' "$1" >&2
}

me=$(id -u)
# Whether the file $1 belongs to this user and its mode keeps its owner from reading it.
owner_unreadable() {
  set -f
  set -- $(ls -ldn -- "$1" 2>/dev/null) x x x
  set +f
  [ "$3" = "$me" ] || return 1
  case $1 in -r*) return 1 ;; -*) return 0 ;; esac
  return 1
}

# Print the bytes of a percent-encoded path: %XX becomes an octal printf escape; a literal
# backslash or percent sign is escaped so that printf prints it as is.
decode() {
  s=$1
  out=
  while [ -n "$s" ]; do
    case $s in
      %[0-9A-Fa-f][0-9A-Fa-f]*)
        rest=\${s#???}
        hh=\${s%"$rest"}
        hh=\${hh#%}
        out=$out\\\\$(printf '%03o' "$((0x$hh))")
        s=$rest ;;
      *)
        rest=\${s#?}
        c=\${s%"$rest"}
        s=$rest
        case $c in
          \\\\) out=$out\\\\\\\\ ;;
          %) out=$out%% ;;
          *) out=$out$c ;;
        esac ;;
    esac
  done
  printf "$out"
}

# touch -t stamp (UTC) of a unix time, by the civil-from-days algorithm.
stamp() {
  t=$1
  days=$((t / 86400))
  secs=$((t % 86400))
  if [ "$secs" -lt 0 ]; then
    secs=$((secs + 86400))
    days=$((days - 1))
  fi
  z=$((days + 719468))
  if [ "$z" -ge 0 ]; then era=$((z / 146097)); else era=$(((z - 146096) / 146097)); fi
  doe=$((z - era * 146097))
  yoe=$(((doe - doe / 1460 + doe / 36524 - doe / 146096) / 365))
  y=$((yoe + era * 400))
  doy=$((doe - (365 * yoe + yoe / 4 - yoe / 100)))
  mp=$(((5 * doy + 2) / 153))
  d=$((doy - (153 * mp + 2) / 5 + 1))
  if [ "$mp" -lt 10 ]; then m=$((mp + 3)); else m=$((mp - 9)); fi
  if [ "$m" -le 2 ]; then y=$((y + 1)); fi
  printf '%04d%02d%02d%02d%02d.%02d' "$y" "$m" "$d" $((secs / 3600)) $((secs % 3600 / 60)) $((secs % 60))
}

while IFS=$TAB read -r hash size mtime mode enc; do
  case $hash in '#'* | '') continue ;; esac
  case $hash in *[!0-9a-f]*) warn "bad hash in manifest line: $hash"; failed=$((failed + 1)); continue ;; esac
  if [ \${#hash} -ne 64 ]; then warn "bad hash in manifest line: $hash"; failed=$((failed + 1)); continue; fi
  case $mtime in '' | *[!0-9-]*) warn "bad mtime for $enc"; failed=$((failed + 1)); continue ;; esac
  case $mode in '' | *[!0-7]*) warn "bad mode for $enc"; failed=$((failed + 1)); continue ;; esac
  case \${enc-} in '' | *%00*) warn "refusing path $enc"; failed=$((failed + 1)); continue ;; esac
  case $enc in
    *[%\\\\]*)
      p=$(decode "$enc"; printf x)
      p=\${p%x} ;;
    *) p=$enc ;;
  esac
  case $p in
    /*) rel=\${p#/} ;;
    *) warn "refusing relative path $enc"; failed=$((failed + 1)); continue ;;
  esac
  case /$rel/ in
    // | */../* | */./* | *//*) warn "refusing path $enc"; failed=$((failed + 1)); continue ;;
  esac
  # No link on the way below DEST: mkdir and cp would follow it out of DEST.
  d=$DEST
  r=$rel
  linked=
  while :; do
    case $r in */*) c=\${r%%/*}; r=\${r#*/} ;; *) break ;; esac
    d=$d/$c
    if [ -L "$d" ]; then linked=$d; break; fi
  done
  if [ -n "$linked" ]; then
    warn "refusing $enc: $linked is a symbolic link"
    failed=$((failed + 1))
    continue
  fi
  target=$DEST/$rel
  if [ -e "$target" ] || [ -L "$target" ]; then
    got=
    if [ -f "$target" ] && [ ! -L "$target" ]; then
      if [ -r "$target" ]; then
        got=$(sha256sum < "$target")
        got=\${got%% *}
      else
        # Not readable by this user. A file of this user that its own mode keeps from being read
        # by its owner (000, 200: as a restore leaves a file listed so) is kept and said,
        # unchecked; any other fails the run.
        o=00$mode
        while [ \${#o} -gt 3 ]; do o=\${o#?}; done
        o=\${o%??}
        case $o in
          [0123])
            if owner_unreadable "$target"; then
              warn "$enc exists and cannot be read to check it; kept"
              unchecked=$((unchecked + 1))
              continue
            fi ;;
        esac
        warn "$enc exists and cannot be read to check it"
        failed=$((failed + 1))
        continue
      fi
    fi
    if [ "$got" = "$hash" ]; then
      present=$((present + 1))
    else
      warn "$enc exists with other content; not replaced"
      failed=$((failed + 1))
    fi
    continue
  fi
  obj=$OBJECTS/\${hash%"\${hash#???}"}/$hash
  if [ -L "$obj" ] || [ ! -f "$obj" ]; then
    warn "missing object $hash for $enc"
    failed=$((failed + 1))
    continue
  fi
  mkdir -p -- "\${target%/*}" || { failed=$((failed + 1)); continue; }
  if ! work; then
    warn "cannot make a temp folder in $DEST"
    failed=$((failed + 1))
    continue
  fi
  # A temp name in this run's folder until it is checked: a bad or half-copied file never has
  # the name.
  tmp=$WORK/file
  if ! cp -- "$obj" "$tmp"; then
    warn "cannot copy $enc"
    rm -f -- "$tmp"
    failed=$((failed + 1))
    continue
  fi
  got=$(sha256sum < "$tmp")
  got=\${got%% *}
  if [ "$got" != "$hash" ]; then
    warn "wrong content for $enc: $got instead of $hash"
    rm -f -- "$tmp"
    failed=$((failed + 1))
    continue
  fi
  m=$mode
  while [ \${#m} -gt 3 ]; do m=\${m#?}; done
  chmod -- "$m" "$tmp" || warn "cannot set mode of $enc"
  TZ=UTC0 touch -t "$(stamp "$mtime")" -- "$tmp" || warn "cannot set mtime of $enc"
  if ! mv -- "$tmp" "$target"; then
    warn "cannot name $enc"
    rm -f -- "$tmp"
    failed=$((failed + 1))
    continue
  fi
  restored=$((restored + 1))
done < "$MANIFEST"

cleanup
WORK=
sync
printf 'distbackup-restore: %s restored, %s already present, %s failed\\n' "$restored" "$present" "$failed" >&2
if [ "$unchecked" -gt 0 ]; then
  printf 'distbackup-restore: %s already there and not readable, not checked\\n' "$unchecked" >&2
fi
[ "$failed" -eq 0 ]
`;
