#!/bin/sh
# Builds the fixture drivers in bin/ from src/ with mingw-w64 (Debian: apt-get install gcc-mingw-w64),
# then derives the negative fixtures with make_variants.py. The binaries are committed so tests and CI
# need no compiler; rerun this after changing a source (and update expected.json by hand).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src="$here/src"
out="$here/bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
rm -f "$out"/*.sys "$out"/*.bin

for arch in x64 i686; do
    if [ "$arch" = x64 ]; then
        triple=x86_64-w64-mingw32
        nt_def=ntoskrnl64.def ndis_def=ndis64.def
        entry=DriverEntry base=0x140000000 dlltool_flags=""
    else
        triple=i686-w64-mingw32
        nt_def=ntoskrnl32.def ndis_def=ndis32.def
        entry=_DriverEntry@8 base=0x10000 dlltool_flags="-k"
    fi
    "$triple-dlltool" $dlltool_flags -d "$src/$nt_def" -l "$tmp/libntoskrnl-$arch.a"
    "$triple-dlltool" $dlltool_flags -d "$src/$ndis_def" -l "$tmp/libndis-$arch.a"
    "$triple-windres" -O coff -i "$src/version.rc" -o "$tmp/version-$arch.o"

    build() { # build NAME SOURCE OPT EXTRA_CFLAGS [VERSION_OBJ]
        "$triple-gcc" -std=gnu11 -Wall -Wno-multichar -ffreestanding -fno-stack-protector \
            -mno-stack-arg-probe -fno-builtin "$3" $4 -c "$src/$2" -o "$tmp/$1.o"
        "$triple-gcc" -nostdlib -shared -s -Wl,--subsystem,native -Wl,--entry,"$entry" \
            -Wl,--image-base,"$base" -Wl,--no-insert-timestamp -Wl,--file-alignment,0x200 \
            -Wl,--section-alignment,0x1000 -o "$out/$1.sys" "$tmp/$1.o" ${5:-} \
            "$tmp/libntoskrnl-$arch.a" "$tmp/libndis-$arch.a"
    }

    for opt in O0 O2 Os; do
        for name in basic tailcall ndis; do
            build "$name-$arch-$opt" "$name.c" "-$opt" "" "$tmp/version-$arch.o"
        done
        # no version resource: DriverFacts must come back empty, not fail
        build "datatags-$arch-$opt" datatags.c "-$opt" ""
    done
    # direct `call rel32` to the import library's `jmp [__imp_X]` stubs
    for name in basic tailcall; do
        build "$name-$arch-O2-thunks" "$name.c" -O2 "-DFIXTURE_THUNKS=1" "$tmp/version-$arch.o"
    done
done

python3 "$here/make_variants.py" "$out"
ls -l "$out"
