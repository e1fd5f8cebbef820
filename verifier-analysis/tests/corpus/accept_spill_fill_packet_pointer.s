# expect: accept
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r3 = r1
r3 += 34
if r3 > r2 goto out
*(u64 *)(r10 - 8) = r1
call 5
r1 = *(u64 *)(r10 - 8)
*(u8 *)(r1 + 22) = 1
out:
r0 = 2
exit
