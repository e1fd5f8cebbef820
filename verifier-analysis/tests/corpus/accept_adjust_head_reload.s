# expect: accept
r6 = r1
r2 = -4
call 44
r2 = *(u32 *)(r6 + 4)
r1 = *(u32 *)(r6 + 0)
r3 = r1
r3 += 1
if r3 > r2 goto out
*(u8 *)(r1 + 0) = 0
out:
r0 = 2
exit
