# expect: reject PointerLeak
# kernel: accept
# why: privileged kernels allow pointer leaks (allow_ptr_leaks); a switch address in a packet leaves the host, so we refuse
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r3 = r1
r3 += 8
if r3 > r2 goto out
*(u64 *)(r1 + 0) = r1
out:
r0 = 0
exit
