#!/bin/sh
# Submits every XDP object of the corpus to the kernel verifier with bpftool (needs root):
# the programs in extensions/ must load; those in extensions/unsafe/ must be refused, except
# uninit_stack.o, which a privileged loader is allowed to load (see README.md).
set -u
cd "$(dirname "$0")"
pin=/sys/fs/bpf/bpfswitch_check_$$
status=0
for obj in *.o unsafe/*.o; do
	if bpftool prog load "$obj" "$pin" type xdp >/dev/null 2>&1; then
		rm -f "$pin"
		verdict=accepted
	else
		verdict=rejected
	fi
	case "$obj" in
	unsafe/uninit_stack.o) want="$verdict" ;;
	unsafe/*) want=rejected ;;
	*) want=accepted ;;
	esac
	printf '%-32s %s\n' "$obj" "$verdict"
	[ "$verdict" = "$want" ] || { echo "  expected $want" >&2; status=1; }
done
exit $status
