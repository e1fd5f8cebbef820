# expect: accept
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r3 = r1
r3 += 34
if r3 > r2 goto out
r4 = *(u8 *)(r1 + 22)
r4 += -1
*(u8 *)(r1 + 22) = r4
out:
r0 = 2
exit
