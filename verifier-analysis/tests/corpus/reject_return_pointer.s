# expect: reject PointerLeak
# kernel: accept
# why: privileged kernels allow pointer leaks (allow_ptr_leaks) and do not range-check XDP return values; we refuse to return addresses
r0 = r1
exit
