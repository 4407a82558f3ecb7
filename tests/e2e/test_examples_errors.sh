#!/usr/bin/env bash
# End-to-end: how the examples fail. A missing input exits non-zero with a message naming the
# path and leaves no output directory; an existing output directory is refused with a message
# and left untouched; a malformed record (a join line without a tab, a one-field edge line, a
# terasort file that is not whole records) fails the job, names the record or file and leaves
# no output directory; usage errors exit 2 with a usage line.
source "$(dirname "$0")/lib.sh"
for e in wordcount terasort pagerank join; do need_file "$EX/$e"; done

# expect NAME STATUS PATTERN CMD...: exit status STATUS (or "nonzero") and stderr matching
# the extended regular expression PATTERN.
expect()
{
    local name=$1 want=$2 pattern=$3
    shift 3
    run "$name" "$@"
    if [ "$want" = nonzero ] && [ "$rc" -eq 0 ]; then
        fail "$name: exit status 0, expected a failure"
    elif [ "$want" != nonzero ] && [ "$rc" -ne "$want" ]; then
        fail "$name: exit status $rc, expected $want"
        show "$name"
    elif ! grep -Eq -- "$pattern" "$T/$name.err"; then
        fail "$name: stderr does not match /$pattern/"
        show "$name"
    else
        return 0
    fi
    return 1
}

# no_output NAME DIR: passes NAME when DIR does not exist.
no_output()
{
    if [ -e "$2" ]; then fail "$1: output directory '$2' exists after a failed job"; else pass "$1"; fi
}

printf 'a\tb\n' >"$T/kv.txt"
printf 'x y\n' >"$T/edges.txt"
head -c 1000 /dev/zero >"$T/ten.bin"

# Missing inputs.
for e in wordcount terasort pagerank; do
    expect "missing-$e" nonzero "$T/nope" "$EX/$e" --master 'local[2]' "$T/nope" "$T/out-missing-$e" &&
        no_output "missing-$e" "$T/out-missing-$e"
done
expect missing-join-left nonzero "$T/nope-left" "$EX/join" "$T/nope-left" "$T/kv.txt" "$T/o-jl" &&
    no_output missing-join-left "$T/o-jl"
expect missing-join-right nonzero "$T/nope-right" "$EX/join" "$T/kv.txt" "$T/nope-right" "$T/o-jr" &&
    no_output missing-join-right "$T/o-jr"

# Existing output directory: refused, and what is in it is kept.
mkdir -p "$T/exists"
echo keep >"$T/exists/file"
expect exists-wordcount nonzero "wordcount: output directory '$T/exists' already exists" \
    "$EX/wordcount" "$T/kv.txt" "$T/exists" && pass exists-wordcount
expect exists-terasort nonzero "already exists" "$EX/terasort" "$T/ten.bin" "$T/exists" &&
    pass exists-terasort
expect exists-pagerank nonzero "already exists" "$EX/pagerank" "$T/edges.txt" "$T/exists" &&
    pass exists-pagerank
expect exists-join nonzero "already exists" "$EX/join" "$T/kv.txt" "$T/kv.txt" "$T/exists" &&
    pass exists-join
if [ "$(cat "$T/exists/file")" = keep ] && [ "$(ls "$T/exists")" = file ]; then
    pass exists-untouched
else
    fail "exists-untouched: the existing directory was modified"
fi

# Malformed records.
printf 'good\tline\nthis line has no tab at all\nalso\tgood\n' >"$T/notab.txt"
expect join-no-tab nonzero "this line has no tab at all" \
    "$EX/join" --master 'local[2]' "$T/notab.txt" "$T/kv.txt" "$T/o-notab" &&
    no_output join-no-tab "$T/o-notab"
printf 'a b\nlonely-field\n' >"$T/onefield.txt"
expect pagerank-one-field nonzero "lonely-field" \
    "$EX/pagerank" --master 'local[2]' "$T/onefield.txt" "$T/o-onefield" &&
    no_output pagerank-one-field "$T/o-onefield"
head -c 250 /dev/zero >"$T/partial.bin"
expect terasort-partial nonzero "partial.bin" \
    "$EX/terasort" --master 'local[2]' "$T/partial.bin" "$T/o-partial" &&
    no_output terasort-partial "$T/o-partial"

# Usage errors: exit 2 and a usage line.
expect usage-wordcount-none 2 "usage: wordcount" "$EX/wordcount" && pass usage-wordcount-none
expect usage-wordcount-many 2 "usage: wordcount" "$EX/wordcount" a b c && pass usage-wordcount-many
expect usage-terasort 2 "usage: terasort" "$EX/terasort" "$T/ten.bin" && pass usage-terasort
expect usage-join 2 "usage: join" "$EX/join" "$T/kv.txt" "$T/o-u" && pass usage-join
expect usage-pagerank 2 "usage: pagerank" "$EX/pagerank" "$T/edges.txt" && pass usage-pagerank
expect usage-pagerank-iter 2 "iterations" "$EX/pagerank" --iterations ten "$T/edges.txt" "$T/o-i" &&
    no_output usage-pagerank-iter "$T/o-i"
expect usage-unknown-option 2 "usage: wordcount|--bogus" "$EX/wordcount" --bogus "$T/kv.txt" "$T/o-b" &&
    no_output usage-unknown-option "$T/o-b"
expect bad-conf 2 "ember.no.such.option" \
    "$EX/wordcount" --conf ember.no.such.option=1 "$T/kv.txt" "$T/o-c" &&
    no_output bad-conf "$T/o-c"
expect bad-master nonzero "bogus://" "$EX/wordcount" --master 'bogus://x' "$T/kv.txt" "$T/o-m" &&
    no_output bad-master "$T/o-m"

finish
