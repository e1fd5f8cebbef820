# expect: reject OutOfBounds
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r3 = r1
r3 += 14
if r3 <= r2 goto out
r0 = *(u8 *)(r1 + 0)
out:
r0 = 2
exit
