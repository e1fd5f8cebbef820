# expect: accept
# kernel: reject
# why: the kernel does not tie data_end - data to the packet length, so the length check proves nothing to it; we track that the difference is the length
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r2 -= r1
if r2 < 14 goto out
r0 = *(u16 *)(r1 + 12)
exit
out:
r0 = 1
exit
