# expect: accept
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r3 = r1
r3 += 34
if r3 > r2 goto out
r4 = *(u8 *)(r1 + 23)
if r4 != 17 goto out
r5 = *(u8 *)(r1 + 14)
r5 &= 15
r5 <<= 2
if r5 < 20 goto out
r6 = r1
r6 += 14
r6 += r5
r7 = r6
r7 += 12
if r7 > r2 goto out
*(u32 *)(r6 + 8) = 0
out:
r0 = 2
exit
