# expect: reject UnboundedLoop
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r3 = r1
r3 += 1
if r3 > r2 goto out
r4 = *(u8 *)(r1 + 0)
loop:
r4 += -1
if r4 != 0 goto loop
out:
r0 = 0
exit
