# expect: reject PointerLeak
# kernel: accept
# why: privileged kernels allow pointer leaks (allow_ptr_leaks); a switch address in a map is visible to the control plane, so we refuse
*(u32 *)(r10 - 4) = 0
r2 = r10
r2 += -4
r1 = map[0] ll
call 1
if r0 == 0 goto out
*(u64 *)(r0 + 0) = r10
out:
r0 = 0
exit
